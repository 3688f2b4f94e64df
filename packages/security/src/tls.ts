import { X509Certificate, createPrivateKey } from "node:crypto";
import * as fs from "node:fs";
import { serverParts, type ServerParts, type TlsSetting, MAX_TIMER_MS, checkBoolean, checkFunction, checkInt, checkObject, checkString } from "@blackice/flight-core";

/** Options of {@link tls}. */
export interface TlsOptions {
  /** PEM certificate chain of the server (leaf first). */
  certFile: string;
  /** PEM private key of the server certificate (not encrypted). */
  keyFile: string;
  /** PEM CA certificates that client certificates must chain to (mTLS). */
  clientCaFile?: string;
  /** Require a client certificate. Default: true when `clientCaFile` is given. Needs `clientCaFile`. */
  requireClientCert?: boolean;
  /**
   * Reload when the files change (polled, with an unref'd timer) or on SIGHUP. While the
   * server runs, SIGHUP then reloads instead of ending the process. Default false.
   */
  watch?: boolean;
  /** How often watched files are checked, in ms. Default 2000. */
  pollIntervalMs?: number;
  /** Receives a reload that was skipped because the new files are not a valid set. Default: a process warning. */
  onReloadError?: (err: Error) => void;
}

type PemFiles = { certFile: string; keyFile: string; clientCaFile?: string };
type PemSet = { cert: Buffer; key: Buffer; clientCa?: Buffer };

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?\r?\n-----END \1-----/g;

function pemLabels(text: string): string[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => m[1]!);
}

/** Reads and checks the three files; `fail` builds the error (TypeError at build time, Error on reload). */
function readPemSet(files: PemFiles, fail: (message: string) => Error): PemSet {
  const read = (option: string, file: string): Buffer => {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch (err) {
      throw fail(`tls: ${option} ${JSON.stringify(file)} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`);
    }
    if (!st.isFile()) throw fail(`tls: ${option} ${JSON.stringify(file)} is not a file`);
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw fail(`tls: ${option} ${JSON.stringify(file)} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`);
    }
  };
  const cert = read("certFile", files.certFile);
  const key = read("keyFile", files.keyFile);
  const clientCa = files.clientCaFile === undefined ? undefined : read("clientCaFile", files.clientCaFile);

  const certLabels = pemLabels(cert.toString("latin1"));
  if (certLabels.length === 0 || !certLabels.every((l) => l === "CERTIFICATE")) {
    throw fail(`tls: certFile ${JSON.stringify(files.certFile)} does not look like PEM certificates (-----BEGIN CERTIFICATE-----)`);
  }
  const keyLabels = pemLabels(key.toString("latin1"));
  if (keyLabels.length !== 1 || !/(^|[A-Z ])PRIVATE KEY$/.test(keyLabels[0]!)) {
    throw fail(`tls: keyFile ${JSON.stringify(files.keyFile)} does not look like one PEM private key (-----BEGIN PRIVATE KEY-----)`);
  }
  if (keyLabels[0] === "ENCRYPTED PRIVATE KEY") throw fail(`tls: keyFile ${JSON.stringify(files.keyFile)} is encrypted; give an unencrypted key`);
  if (clientCa !== undefined) {
    const caLabels = pemLabels(clientCa.toString("latin1"));
    if (caLabels.length === 0 || !caLabels.every((l) => l === "CERTIFICATE")) {
      throw fail(`tls: clientCaFile ${JSON.stringify(files.clientCaFile)} does not look like PEM certificates (-----BEGIN CERTIFICATE-----)`);
    }
  }
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch {
    throw fail(`tls: certFile ${JSON.stringify(files.certFile)} holds no readable certificate`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw fail(`tls: keyFile ${JSON.stringify(files.keyFile)} holds no readable private key`);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw fail(`tls: keyFile ${JSON.stringify(files.keyFile)} is not the key of the certificate in certFile ${JSON.stringify(files.certFile)}`);
  }
  if (clientCa !== undefined) {
    try {
      new X509Certificate(clientCa);
    } catch {
      throw fail(`tls: clientCaFile ${JSON.stringify(files.clientCaFile)} holds no readable certificate`);
    }
  }
  return clientCa === undefined ? { cert, key } : { cert, key, clientCa };
}

function fileSignature(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch {
    return "missing";
  }
}

/**
 * TLS for the server port, described without gRPC: server parts holding one core `TlsSetting`, that the binding turns
 * into credentials. The files are checked at build time: each must exist and hold PEM of the
 * right kind, the key must be unencrypted and belong to the certificate, and
 * `requireClientCert` needs `clientCaFile` (a TypeError naming the file, never its contents).
 * `load()` reads the files again each time, so a reload picks up renewed certificates.
 *
 * With `watch: true`, `onReloadable(reload)` polls the files' metadata and calls `reload()`
 * once a change has settled (unchanged for one poll) and the new set passes the same checks;
 * SIGHUP forces a check at once. A set that fails (say, a new certificate whose key is not
 * written yet) is skipped and reported to `onReloadError`; the server keeps its current
 * credentials. The returned function stops watching.
 *
 * @example
 * createFlightServer(tls({ certFile: "/etc/blackice/tls.crt", keyFile: "/etc/blackice/tls.key", clientCaFile: "/etc/blackice/ca.crt", watch: true }));
 */
export function tls(options: TlsOptions): ServerParts {
  const where = "tls";
  checkObject(where, "options", options);
  const certFile = checkString(where, "certFile", options.certFile, "a non-empty path", true) as string;
  const keyFile = checkString(where, "keyFile", options.keyFile, "a non-empty path", true) as string;
  const clientCaFile = checkString(where, "clientCaFile", options.clientCaFile, "a non-empty path");
  const requireClientCert = checkBoolean(where, "requireClientCert", options.requireClientCert, clientCaFile !== undefined);
  if (requireClientCert && clientCaFile === undefined) throw new TypeError("tls: requireClientCert needs clientCaFile (the CA that client certificates must chain to)");
  const watch = checkBoolean(where, "watch", options.watch, false);
  const pollIntervalMs = checkInt(where, "pollIntervalMs", options.pollIntervalMs, 10, MAX_TIMER_MS, 2000);
  checkFunction(where, "onReloadError", options.onReloadError);
  const files: PemFiles = { certFile, keyFile, clientCaFile };
  readPemSet(files, (m) => new TypeError(m));

  const onReloadError =
    options.onReloadError ??
    ((err: Error) => process.emitWarning(`${err.message}; keeping the current TLS credentials`, { code: "BLACKICE_TLS_RELOAD" }));
  const paths = [files.certFile, files.keyFile, ...(files.clientCaFile === undefined ? [] : [files.clientCaFile])];
  const signature = (): string => paths.map(fileSignature).join("|");

  const setting: TlsSetting = {
    kind: "tls",
    requireClientCert,
    load: function loadTlsFiles() {
      return readPemSet(files, (m) => new Error(m));
    },
  };
  if (!watch) return serverParts(setting);

  const onReloadable = function watchTlsFiles(reload: () => void): () => void {
    if (typeof reload !== "function") throw new TypeError("tls: onReloadable needs a reload function");
    let last = signature();
    let pending = false;
    let reportedFor: string | undefined;
    const tryReload = (): void => {
      try {
        readPemSet(files, (m) => new Error(m));
      } catch (err) {
        const sig = signature();
        if (reportedFor !== sig) {
          reportedFor = sig;
          onReloadError(err as Error);
        }
        return;
      }
      pending = false;
      reportedFor = undefined;
      reload();
    };
    const tick = (): void => {
      const now = signature();
      if (now !== last) {
        last = now;
        pending = true; // wait one more poll for the writes to settle
        return;
      }
      if (pending) tryReload();
    };
    const timer = setInterval(tick, pollIntervalMs);
    timer.unref();
    const onHangup = (): void => {
      last = signature();
      tryReload();
    };
    process.on("SIGHUP", onHangup);
    return function stopWatchingTlsFiles() {
      clearInterval(timer);
      process.off("SIGHUP", onHangup);
    };
  };
  return serverParts({ ...setting, onReloadable });
}
