import * as grpc from "@grpc/grpc-js";
import type { TlsSetting } from "@blackice/flight-core";

type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;
type CaListener = grpc.experimental.CaCertificateUpdateListener;

/**
 * A grpc-js CertificateProvider fed by a TlsSetting's `load()`. `reload()` reads the PEM
 * files again and hands them to grpc-js, which swaps the secure context of the listening
 * server: new handshakes use the new certificate, open connections are not dropped.
 */
class TlsSettingProvider implements grpc.experimental.CertificateProvider {
  private readonly identity = new Set<IdentityListener>();
  private readonly ca = new Set<CaListener>();
  private latest: ReturnType<TlsSetting["load"]>;

  constructor(private readonly tls: TlsSetting) {
    this.latest = tls.load();
  }

  /** Reads the files again; keeps the previous certificates if they cannot be read. */
  reload(onError?: (err: unknown) => void): void {
    try {
      this.latest = this.tls.load();
    } catch (err) {
      onError?.(err);
      return;
    }
    for (const l of this.identity) l({ certificate: this.latest.cert, privateKey: this.latest.key });
    if (this.latest.clientCa) for (const l of this.ca) l({ caCertificate: this.latest.clientCa });
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identity.add(listener);
    // Deliver after grpc-js has registered its own watcher (it adds ours first).
    queueMicrotask(() => listener({ certificate: this.latest.cert, privateKey: this.latest.key }));
  }
  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identity.delete(listener);
  }
  addCaCertificateListener(listener: CaListener): void {
    this.ca.add(listener);
    const ca = this.latest.clientCa;
    if (ca) queueMicrotask(() => listener({ caCertificate: ca }));
  }
  removeCaCertificateListener(listener: CaListener): void {
    this.ca.delete(listener);
  }
}

/** Server credentials for an optional TlsSetting, and a function that stops reload watching. */
export function serverCredentials(tls: TlsSetting | undefined, onError?: (err: unknown) => void): { credentials: grpc.ServerCredentials; stop: () => void } {
  if (!tls) return { credentials: grpc.ServerCredentials.createInsecure(), stop: () => undefined };
  const provider = new TlsSettingProvider(tls);
  const withClientCa = provider["latest"].clientCa !== undefined;
  // grpc-js's factory takes the identity provider first, then the CA provider.
  const credentials = grpc.experimental.createCertificateProviderServerCredentials(provider, withClientCa ? provider : null, tls.requireClientCert);
  const stop = tls.onReloadable?.(() => provider.reload(onError)) ?? (() => undefined);
  return { credentials, stop };
}
