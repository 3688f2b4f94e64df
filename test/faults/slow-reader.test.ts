// Fault: a reader stops reading in the middle of a large DoGet. Other clients' puts, gets,
// listings and pings must complete meanwhile, and the paused reader still gets every byte
// once it resumes.
import * as grpc from "@grpc/grpc-js";
import { serverConfig } from "@blackice/flight-core";
import { createFlightServer, type FlightServer } from "@blackice/flight";
import {
  connect,
  get,
  listPaths,
  makeFlight,
  pathDescriptor,
  ping,
  put,
  sameMessage,
  stats,
  unary,
  type Client,
  type DataLike,
  type FlightInfoLike,
  type Msg,
} from "./helpers";

const MiB = 2 ** 20;

describe("a slow reader", () => {
  let server: FlightServer;
  const clients: Client[] = [];
  const big: Msg[] = makeFlight(32, 262_144, 5); // 64 MiB in 2 MiB batches
  const small: Msg[] = makeFlight(2, 1000, 6);
  let bigTicket: unknown;

  beforeAll(async () => {
    server = createFlightServer(serverConfig({ addr: "127.0.0.1:0", maxMemoryBytes: 512 * MiB, maxMessageBytes: 8 * MiB, enableGC: false }));
    await server.start();
    const c = connect(server.port);
    clients.push(c);
    await put(c, ["big"], big);
    await put(c, ["small"], small);
    bigTicket = (await unary<FlightInfoLike>(c, "getFlightInfo", pathDescriptor("big"))).endpoint[0].ticket;
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await server?.shutdown({ graceMs: 100 });
  });

  it("does not block other clients, and gets everything once it reads again", async () => {
    const slow = connect(server.port);
    clients.push(slow);
    const call = slow.doGet(bigTicket, new grpc.Metadata()) as grpc.ClientReadableStream<DataLike>;
    const received: DataLike[] = [];
    const ended = new Promise<grpc.ServiceError | undefined>((resolve) => {
      call.on("error", resolve);
      call.on("end", () => resolve(undefined));
    });
    await new Promise<void>((resolve) =>
      call.on("data", (m: DataLike) => {
        received.push(m);
        if (received.length === 2) {
          call.pause();
          resolve();
        }
      }),
    );
    // Let the server fill whatever buffers and windows the paused stream has.
    await new Promise((r) => setTimeout(r, 300));
    const heldBack = received.length;

    // Meanwhile, eight other clients, each on its own connection, do a bit of everything.
    const deadline = () => ({ deadline: Date.now() + 15_000 });
    const others = Array.from({ length: 8 }, (_, i) => {
      const c = connect(server.port);
      clients.push(c);
      return (async () => {
        const own = makeFlight(4, 65_536, 100 + i);
        await put(c, ["other", String(i)], own, deadline());
        const info = await unary<FlightInfoLike>(c, "getFlightInfo", pathDescriptor("other", String(i)), deadline());
        const back = await get(c, info.endpoint[0].ticket, deadline());
        expect(back.every((m, j) => sameMessage(m, own[j]))).toBe(true);
        const smallInfo = await unary<FlightInfoLike>(c, "getFlightInfo", pathDescriptor("small"), deadline());
        expect((await get(c, smallInfo.endpoint[0].ticket, deadline())).length).toBe(small.length);
        expect(await ping(c, deadline())).toBe("pong");
        expect((await listPaths(c)).length).toBeGreaterThanOrEqual(2);
        return true;
      })();
    });
    expect(await Promise.all(others)).toEqual(Array(8).fill(true));

    // Even calls on the paused reader's own connection get through (its stream's window is
    // full, not the connection's).
    expect(await ping(slow, deadline())).toBe("pong");
    const smallInfo = await unary<FlightInfoLike>(slow, "getFlightInfo", pathDescriptor("small"), deadline());
    expect((await get(slow, smallInfo.endpoint[0].ticket, deadline())).length).toBe(small.length);

    // The slow reader did not move while the others were served, and is still being served.
    expect(received.length).toBe(heldBack);
    const s = await stats(clients[0]);
    expect((s.calls as Record<string, { total: number }>).doGet.total).toBeGreaterThanOrEqual(16);

    call.resume();
    expect(await ended).toBeUndefined();
    expect(received.length).toBe(big.length);
    expect(received.every((m, i) => sameMessage(m, big[i]))).toBe(true);
  });
});
