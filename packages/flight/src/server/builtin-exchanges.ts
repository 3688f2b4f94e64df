import type { ExchangeHandler, FlightData } from "@blackice/flight-core";

/** `echo`: sends every message back as it came. */
export const echoExchange: ExchangeHandler = async function* echo(input: AsyncIterable<FlightData>, first: FlightData) {
  if (first.dataHeader.length > 0 || first.appMetadata.length > 0) yield { ...first, flightDescriptor: undefined };
  for await (const m of input) yield m;
};

/**
 * The DoExchange handlers every server has, by command: only `echo`, which holds nothing.
 * `project` decodes Arrow data in worker threads, so a host adds it deliberately
 * (`projectExchange()`, or the CLI's `--project-exchange`).
 */
export function builtinExchanges(): Array<[string, ExchangeHandler]> {
  return [["echo", echoExchange]];
}
