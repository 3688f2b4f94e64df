// Compile-time proof that core's plain Flight types (packages/core/src/flight-types.ts) are
// the generated protobuf types (gen/Flight.ts), field for field: the binding hands the
// messages it decodes to middleware as they are, and encodes what handlers return, with no
// conversion. A field added, removed or retyped on either side fails `tsc -b` here.
import type * as core from "@blackice/flight-core";
import type * as gen from "../gen/Flight";

/** true when A and B are assignable both ways and have the same keys (optional ones included). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? ([keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false) : false) : false;
/** Compiles only for `true`. */
type Holds<T extends true> = T;

/** The messages that must be the same both ways. */
export type FlightTypesMatch = [
  Holds<Same<core.FlightDescriptor, gen.FlightDescriptor>>,
  Holds<Same<core.Ticket, gen.Ticket>>,
  Holds<Same<core.Location, gen.Location>>,
  Holds<Same<core.FlightEndpoint, gen.FlightEndpoint>>,
  Holds<Same<core.FlightInfo, gen.FlightInfo>>,
  Holds<Same<core.PollInfo, gen.PollInfo>>,
  Holds<Same<core.PutResult, gen.PutResult>>,
  Holds<Same<core.Criteria, gen.Criteria>>,
  Holds<Same<core.Action, gen.Action>>,
  Holds<Same<core.Result, gen.Result>>,
  Holds<Same<core.ActionType, gen.ActionType>>,
  Holds<Same<core.SchemaResult, gen.SchemaResult>>,
  Holds<Same<core.HandshakeRequest, gen.HandshakeRequest>>,
  Holds<Same<core.HandshakeResponse, gen.HandshakeResponse>>,
  // FlightData: core's body may also be chunks (ByteChunks), which the codec reads and
  // writes itself; a generated FlightData is always a valid core one.
  Holds<gen.FlightData extends core.FlightData ? true : false>,
];
