import { FlightError, StatusCode, invalidArgument, readMessageHeader, MessageKind, type FlightData, type SqlParameterValue } from "@blackice/flight-core";
import { decodeRecordBatches, type ArrowModule } from "../client/arrow-interop";
import type * as Arrow from "apache-arrow";

// The parameters a Flight SQL client binds to a prepared statement (a DoPut of
// CommandPreparedStatementQuery), read from their Arrow stream into the typed values that
// `bindSqlParameters` writes into the statement as literals.

/** Most bytes (bodies and headers) a parameter stream may carry. */
export const MAX_PARAMETER_STREAM_BYTES = 64 * 1024;

const UTC_ZONES = new Set(["UTC", "Etc/UTC", "Z", "+00:00", "+0000", "GMT"]);
const UNITS_PER_SECOND = [1n, 1_000n, 1_000_000n, 1_000_000_000n] as const;
const FRACTION_DIGITS = [0, 3, 6, 9] as const;

/** `YYYY-MM-DD HH:MM:SS[.fraction]` in UTC of a timestamp `raw` in `unit` (arrow TimeUnit). */
function timestampText(raw: bigint, unit: number, column: string): string {
  const per = UNITS_PER_SECOND[unit];
  let seconds = raw / per;
  let fraction = raw % per;
  if (fraction < 0n) {
    fraction += per;
    seconds -= 1n;
  }
  const ms = Number(seconds) * 1000;
  const date = new Date(ms);
  const iso = Number.isFinite(ms) && !Number.isNaN(date.getTime()) ? date.toISOString() : "";
  // Years 0000..9999 only: the literal has four year digits.
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$/.test(iso)) throw invalidArgument(`Flight SQL parameter ${JSON.stringify(column)}: the timestamp is outside the years 0000 to 9999`);
  const digits = FRACTION_DIGITS[unit];
  const frac = digits === 0 ? "" : `.${fraction.toString().padStart(digits, "0")}`;
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac}`;
}

/** The value of row 0 of one parameter column; INVALID_ARGUMENT naming an unsupported type. */
function valueOf(arrow: ArrowModule, field: Arrow.Field, column: Arrow.Vector): SqlParameterValue {
  const T = arrow.Type;
  const type = column.type as Arrow.DataType;
  const typeId = type.typeId;
  const unsupported = () =>
    invalidArgument(`Flight SQL parameter ${JSON.stringify(field.name)} has the type ${String(type)}, which cannot be bound; supported: integers, floats, utf8, large_utf8, bool, null, timestamp`);
  if (typeId === T.Null) return { type: "null" };
  const supported = [T.Int, T.Float, T.Utf8, T.LargeUtf8, T.Bool, T.Timestamp].includes(typeId) || (typeId === T.Dictionary && [T.Utf8, T.LargeUtf8].includes((type as Arrow.Dictionary).dictionary.typeId));
  if (!supported) throw unsupported();
  if (!column.isValid(0)) return { type: "null" };
  const v: unknown = column.get(0);
  switch (typeId) {
    case T.Int:
      return { type: "int", value: String(v as number | bigint) };
    case T.Float:
      return { type: "float", value: v as number };
    case T.Bool:
      return { type: "bool", value: v as boolean };
    case T.Timestamp: {
      // The raw int64 count, not get()'s float of milliseconds, which drops micro- and nanoseconds.
      const data = column.data[0];
      const raw = (data.values as BigInt64Array)[data.offset];
      const zone = (type as Arrow.Timestamp).timezone;
      const value = timestampText(raw, (type as Arrow.Timestamp).unit, field.name);
      if (zone === null || zone === undefined || zone === "") return { type: "timestamp", value };
      // The instant is held in UTC whatever the zone; only UTC is accepted, so that no reader
      // of the value has to know the zone database.
      if (!UTC_ZONES.has(zone)) throw invalidArgument(`Flight SQL parameter ${JSON.stringify(field.name)}: a timestamp with the time zone ${JSON.stringify(zone.slice(0, 64))} cannot be bound; send it in UTC`);
      return { type: "timestamp", value, zone: "UTC" };
    }
    default:
      return { type: "string", value: v as string };
  }
}

/**
 * Reads a Flight SQL parameter stream (the DoPut messages after the command: a schema, then
 * record batches) into the values of its one row, one per column, in column order (`$1` is
 * the first column). The stream is counted as it arrives and refused past
 * {@link MAX_PARAMETER_STREAM_BYTES}; it must hold exactly one row in all (a client binds one
 * row per execution; ADBC's `cursor.execute(sql, params)` sends one). A stream with no batch
 * or no rows gives `undefined`: nothing bound.
 *
 * @throws FlightError INVALID_ARGUMENT for more than one row or a column of a type that cannot
 * be bound (naming it); RESOURCE_EXHAUSTED past the byte limit; DATA_LOSS for a stream apache-arrow cannot read.
 */
export async function readParameterRow(arrow: ArrowModule, messages: AsyncIterator<FlightData>): Promise<SqlParameterValue[] | undefined> {
  let bytes = 0;
  let rows = 0;
  async function* bounded(): AsyncGenerator<FlightData> {
    for (;;) {
      const r = await messages.next();
      if (r.done) return;
      const m = r.value;
      bytes += m.dataHeader.byteLength + m.dataBody.byteLength + m.appMetadata.byteLength;
      if (bytes > MAX_PARAMETER_STREAM_BYTES) throw new FlightError(StatusCode.RESOURCE_EXHAUSTED, `the Flight SQL parameter stream is over ${MAX_PARAMETER_STREAM_BYTES} bytes`);
      if (m.dataHeader.byteLength > 0) {
        const info = readMessageHeader(m.dataHeader, m.dataBody.byteLength);
        if (info.kind === MessageKind.RECORD_BATCH) rows += info.rows;
        // Refused on the header, before the batch is decoded.
        if (rows > 1) throw invalidArgument("Flight SQL parameters: bind one row of parameters per execution (the stream holds more)");
      }
      yield m;
    }
  }
  let row: SqlParameterValue[] | undefined;
  for await (const batch of decodeRecordBatches(bounded())) {
    if (batch.numRows === 0) continue;
    row = batch.schema.fields.map((f, i) => valueOf(arrow, f, batch.getChildAt(i)!));
  }
  return row;
}
