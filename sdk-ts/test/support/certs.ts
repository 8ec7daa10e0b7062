/**
 * Certificates made at test time (node's crypto cannot issue X.509, so @peculiar/x509 over
 * node's WebCrypto): a CA and a server certificate it signed for localhost and 127.0.0.1,
 * written as PEM files the server reads; clients get the CA's PEM.
 */
// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";

/** The CA clients trust and the server's certificate and key files. */
export interface TestCerts {
  readonly caPem: string;
  readonly certPath: string;
  readonly keyPath: string;
}

const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

/** Makes a CA and a server certificate under `dir`. */
export async function makeCerts(dir: string): Promise<TestCerts> {
  const crypto = webcrypto;
  const notBefore = new Date(Date.now() - 5 * 60_000);
  const notAfter = new Date(Date.now() + 24 * 3_600_000);
  const caKeys = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
  const ca = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: "CN=flagwire ts test CA",
      notBefore,
      notAfter,
      keys: caKeys,
      signingAlgorithm: algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ],
    },
  );
  const keys = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
  const leaf = await x509.X509CertificateGenerator.create(
    {
      subject: "CN=flagwire ts test server",
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: algorithm,
      extensions: [
        new x509.SubjectAlternativeNameExtension([
          { type: "dns", value: "localhost" },
          { type: "ip", value: "127.0.0.1" },
        ]),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      ],
    },
  );
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  const certPath = join(dir, "server.pem");
  const keyPath = join(dir, "server-key.pem");
  writeFileSync(certPath, leaf.toString("pem"));
  writeFileSync(keyPath, x509.PemConverter.encode(pkcs8, "PRIVATE KEY"));
  return { caPem: ca.toString("pem"), certPath, keyPath };
}
