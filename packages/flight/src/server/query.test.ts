import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Table, vectorFromArray, Dictionary, Float64, Utf8, Int32 } from "apache-arrow";
import {
  DescriptorType,
  FlightError,
  StatusCode,
  diskStore,
  serverConfig,
  withStore,
  type DiskStore,
  type FlightCall,
  type FlightMiddleware,
} from "@blackice/flight-core";
import { FlightClient } from "../client/flight-client";
import { cmdDescriptor, pathDescriptor } from "../client/descriptors";
import { readArrowSchema } from "../client/arrow-interop";
import { createFlightServer, type FlightServer } from "./create-flight-server";
import { query } from "./query";

const table = new Table({
  ts: vectorFromArray([1, 2, 3, 4], new Float64()),
  cpu: vectorFromArray([0.5, 0.9, 0.95, 0.1], new Float64()),
  host: vectorFromArray(["a", "b", "a", "c"], new Dictionary(new Utf8(), new Int32())),
  n: vectorFromArray([7, 8, 9, 10], new Int32()),
});

const q = (body: object) => cmdDescriptor(JSON.stringify(body));

async function codeOf(p: Promise<unknown>): Promise<StatusCode | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(FlightError);
    return (e as FlightError).code;
  }
}

/** Records what reaches the middleware after query(): method and descriptor path or ticket text. */
function recorder(log: string[]): FlightMiddleware {
  return (next) =>
    async function record(call: FlightCall) {
      if (call.method === "doGet") log.push(`doGet ${Buffer.from(call.request.ticket).toString()}`);
      else if (call.method === "getFlightInfo" || call.method === "pollFlightInfo" || call.method === "getSchema") {
        const d = call.request;
        log.push(`${call.method} ${d.type === DescriptorType.PATH ? JSON.stringify(d.path) : "cmd"}`);
      }
      return next(call);
    };
}

describe("query()", () => {
  it("validates its options when the server is built", () => {
    expect(() => query({ columns: 1 } as never)).toThrow(/unknown option "columns"/);
    expect(() => query(null as never)).toThrow(TypeError);
  });

  describe("on a server", () => {
    let server: FlightServer;
    let client: FlightClient;
    const log: string[] = [];

    beforeAll(async () => {
      server = createFlightServer(serverConfig({ addr: "127.0.0.1:0" }), query(), recorder(log));
      await server.start();
      client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`);
      await client.putTable(pathDescriptor("telemetry", "host-1"), table);
      await client.putTable(cmdDescriptor("plain command"), table);
    });
    afterAll(async () => {
      client?.close();
      await server?.shutdown({ graceMs: 100 });
    });
    beforeEach(() => (log.length = 0));

    it("answers GetFlightInfo with the result's schema, totals and a query ticket", async () => {
      const descriptor = q({ flight: ["telemetry", "host-1"], columns: ["cpu", "host"] });
      const info = await client.getFlightInfo(descriptor);
      expect(readArrowSchema(info).fields.map((f) => f.name)).toEqual(["cpu", "host"]);
      expect(info.totalRecords).toBe(4);
      expect(info.totalBytes).toBe(-1);
      expect(Buffer.from(info.flightDescriptor!.cmd).toString()).toBe(Buffer.from(descriptor.cmd).toString());
      expect(info.endpoint).toHaveLength(1);
      expect(info.endpoint[0]!.location[0]!.uri).toBe(`grpc+tcp://127.0.0.1:${server.port}`);
      const got = await client.getTable(info.endpoint[0]!.ticket!);
      expect(got.schema.fields.map((f) => f.name)).toEqual(["cpu", "host"]);
      expect([...got.getChild("cpu")!]).toEqual([0.5, 0.9, 0.95, 0.1]);
      expect([...got.getChild("host")!]).toEqual(["a", "b", "a", "c"]);
      // What middleware after query() saw: the flight's own GetFlightInfo and DoGet.
      expect(log).toEqual(['getFlightInfo ["telemetry","host-1"]', "doGet p:telemetry/host-1"]);
    });

    it("answers PollFlightInfo and GetSchema the same way", async () => {
      const descriptor = q({ flight: ["telemetry", "host-1"], columns: ["n"] });
      const poll = await client.pollFlightInfo(descriptor);
      expect(readArrowSchema(poll.info!).fields.map((f) => f.name)).toEqual(["n"]);
      expect([...(await client.getTable(poll.info!.endpoint[0]!.ticket!)).getChild("n")!]).toEqual([7, 8, 9, 10]);
      expect(readArrowSchema(await client.getSchema(descriptor)).fields.map((f) => f.name)).toEqual(["n"]);
      expect(log).toEqual(['pollFlightInfo ["telemetry","host-1"]', "doGet p:telemetry/host-1", 'getSchema ["telemetry","host-1"]']);
    });

    it("serves the whole flight when no columns are named", async () => {
      const info = await client.getFlightInfo(q({ flight: ["telemetry", "host-1"] }));
      expect(info.totalBytes).toBeGreaterThan(0);
      const got = await client.getTable(info.endpoint[0]!.ticket!);
      expect(got.schema.fields.map((f) => f.name)).toEqual(["ts", "cpu", "host", "n"]);
      expect(got.numRows).toBe(4);
    });

    it("leaves other descriptors and tickets alone", async () => {
      const info = await client.getFlightInfo(cmdDescriptor("plain command"));
      expect(readArrowSchema(info).fields).toHaveLength(4);
      expect((await client.getTable(info.endpoint[0]!.ticket!)).numRows).toBe(4);
      expect((await client.getTable(pathDescriptor("telemetry", "host-1"))).numRows).toBe(4);
    });

    it("gives clear codes for bad queries and tickets, and keeps serving", async () => {
      expect(await codeOf(client.getFlightInfo(q({ flight: ["telemetry", "host-1"], where: "n > 1 GROUP BY n" })))).toBe(StatusCode.INVALID_ARGUMENT);
      expect(await codeOf(client.getFlightInfo(q({ flight: ["telemetry", "host-1"], select: ["n"] })))).toBe(StatusCode.INVALID_ARGUMENT);
      expect(await codeOf(client.getSchema(q({ flight: ["telemetry", "host-1"], columns: ["zz"] })))).toBe(StatusCode.INVALID_ARGUMENT);
      expect(await codeOf(client.pollFlightInfo(q({ flight: ["nope"], columns: ["n"] })))).toBe(StatusCode.NOT_FOUND);
      expect(await codeOf(client.getTable(Buffer.from("blackice.query.v1:{}")))).toBe(StatusCode.INVALID_ARGUMENT);
      const err = await client.getTable(Buffer.from(`blackice.query.v1:{"ticket":"${Buffer.from("p:telemetry/host-1").toString("base64")}","columns":["missing"]}`)).catch((e) => e);
      expect(err).toBeInstanceOf(FlightError);
      expect((err as FlightError).code).toBe(StatusCode.INVALID_ARGUMENT);
      expect((err as FlightError).message).toContain('"missing"');
      const info = await client.getFlightInfo(q({ flight: ["telemetry", "host-1"], columns: ["ts"] }));
      expect((await client.getTable(info.endpoint[0]!.ticket!)).numRows).toBe(4);
    });
  });

  it("projects flights read from disk (DiskStore)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "query-disk-"));
    let store: DiskStore | undefined;
    let server: FlightServer | undefined;
    let client: FlightClient | undefined;
    try {
      store = diskStore({ dir, fsync: "never" });
      server = createFlightServer(withStore(store), serverConfig({ addr: "127.0.0.1:0" }), query());
      await server.start();
      client = new FlightClient(`grpc+tcp://127.0.0.1:${server.port}`);
      // Several batches, so the store streams several messages from its file.
      for (let i = 0; i < 3; i++) await client.putTable(pathDescriptor("disk", "t"), table);
      const info = await client.getFlightInfo(q({ flight: ["disk", "t"], columns: ["host", "ts"] }));
      const got = await client.getTable(info.endpoint[0]!.ticket!);
      expect(got.numRows).toBe(12);
      expect([...got.getChild("host")!]).toEqual(Array(3).fill(["a", "b", "a", "c"]).flat());
      expect([...got.getChild("ts")!]).toEqual(Array(3).fill([1, 2, 3, 4]).flat());
    } finally {
      client?.close();
      await server?.shutdown({ graceMs: 100 });
      await store?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
