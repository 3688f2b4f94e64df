import * as grpc from "@grpc/grpc-js";
import { tableFromArrays, tableFromIPC, tableToIPC } from "apache-arrow";
import { joinIpcStream, splitIpcStream } from "@blackice/flight-core";
import { bidi, rawClient } from "../../../test/helpers/raw-flight-client";
import { startCli } from "../../../test/helpers/cli";

// The built CLI (`npm run build` first), as an operator runs it.

type Data = { dataHeader: Uint8Array; dataBody: Uint8Array };

const messages = () =>
  splitIpcStream(tableToIPC(tableFromArrays({ a: Int32Array.from([1, 2]), b: Float64Array.from([0.5, 1.5]) }), "stream")).map((m, i) => ({
    flightDescriptor: i === 0 ? { type: 2, cmd: Buffer.from("project:b"), path: [] } : undefined,
    dataHeader: m.header,
    dataBody: m.body,
    appMetadata: new Uint8Array(0),
  }));

describe("the CLI's --project-exchange", () => {
  it.each([
    [["--project-exchange"], {}],
    [[], { BLACKICE_PROJECT_EXCHANGE: "1" }],
  ])("with %p %p serves the project exchange", async (args, env) => {
    const { child, port } = await startCli(args, env);
    const client = rawClient(port);
    try {
      const out = await bidi<Data>(client, "doExchange", messages());
      const result = tableFromIPC(joinIpcStream(out.map((m) => ({ header: m.dataHeader, body: m.dataBody }))));
      expect(result.schema.fields.map((f) => f.name)).toEqual(["b"]);
      expect(result.getChild("b")?.toArray()).toEqual(Float64Array.from([0.5, 1.5]));
    } finally {
      client.close();
      child.kill("SIGKILL");
    }
  });

  it("without it, refuses the project exchange as an unknown one", async () => {
    const { child, port } = await startCli([], { BLACKICE_PROJECT_EXCHANGE: "" });
    const client = rawClient(port);
    try {
      await expect(bidi(client, "doExchange", messages())).rejects.toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
        details: 'no DoExchange handler for "project"; registered: echo',
      });
    } finally {
      client.close();
      child.kill("SIGKILL");
    }
  });
});

