/**
 * A new device CA, as Palyra's daemon makes one: a P-256 key (PKCS#8 PEM) and
 * a self-signed CA certificate for it, subject CN "Palyra Gateway CA".
 * The X.509 library is loaded only here, when an identity is created.
 */
import { toBase64 } from "../crypto/encoding.ts";

/** The CA key and certificate of a new identity. */
export interface NewCa {
  /** PKCS#8 PEM, LF line ends, trailing newline: the KEK seed. */
  privateKeyPem: string;
  certificatePem: string;
}

const TEN_YEARS_MS = 10 * 365 * 24 * 3600 * 1000;

function pem(label: string, der: Uint8Array): string {
  // PEM is padded base64 in 64-character lines.
  let b64 = toBase64(der);
  while (b64.length % 4 !== 0) b64 += "=";
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Makes a new CA key and its self-signed certificate with WebCrypto and `@peculiar/x509`. */
export async function newCa(now: Date = new Date()): Promise<NewCa> {
  // @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API.
  await import("reflect-metadata");
  const loaded = await import("@peculiar/x509");
  // Bundled for Node (scripts/build-node.mjs), this CommonJS package arrives as the default export.
  const x509 = loaded.X509CertificateGenerator === undefined
    ? (loaded as unknown as { default: typeof loaded }).default
    : loaded;
  const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await globalThis.crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]) as CryptoKeyPair;
  const serial = globalThis.crypto.getRandomValues(new Uint8Array(16));
  serial[0] = serial[0]! & 0x7f; // a positive INTEGER
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Array.from(serial, (b) => b.toString(16).padStart(2, "0")).join(""),
    name: "CN=Palyra Gateway CA",
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + TEN_YEARS_MS),
    keys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const der = new Uint8Array(await globalThis.crypto.subtle.exportKey("pkcs8", keys.privateKey));
  try {
    return { privateKeyPem: pem("PRIVATE KEY", der), certificatePem: pem("CERTIFICATE", new Uint8Array(cert.rawData)) };
  } finally {
    der.fill(0);
  }
}
