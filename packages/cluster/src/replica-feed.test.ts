import { ReplicaFeed } from "./replica-feed";

const msg = (i: number) => ({ appMetadata: new Uint8Array([i]) });

describe("ReplicaFeed", () => {
  it("hands messages over in order and ends when ended", async () => {
    const feed = new ReplicaFeed();
    const got: number[] = [];
    const reading = (async () => {
      for await (const m of feed) got.push(m.appMetadata![0]!);
    })();
    for (let i = 0; i < 10; i++) await feed.push(msg(i));
    feed.end();
    await reading;
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("makes the producer wait while the reader is behind (at most 4 messages held)", async () => {
    const feed = new ReplicaFeed();
    let pushed = 0;
    const producing = (async () => {
      for (let i = 0; i < 10; i++) {
        await feed.push(msg(i));
        pushed++;
      }
    })();
    await new Promise((r) => setTimeout(r, 20));
    expect(pushed).toBe(4);
    const it = feed[Symbol.asyncIterator]();
    await it.next();
    await new Promise((r) => setTimeout(r, 20));
    expect(pushed).toBe(5);
    feed.fail(new Error("stop"));
    await expect(producing).rejects.toThrow("stop");
  });

  it("fails the stream (it does not end it) and the producer when failed", async () => {
    const feed = new ReplicaFeed();
    await feed.push(msg(1));
    feed.fail(new Error("replica gone"));
    await expect(feed.push(msg(2))).rejects.toThrow("replica gone");
    const it = feed[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toThrow("replica gone");
  });
});
