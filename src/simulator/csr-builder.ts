/** The simulated firmware's PKCS#10 request: subject serialNumber (+ CN = model), signed by the birth key. */
import { AsnConvert } from '@peculiar/asn1-schema';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AlgorithmIdentifier, AttributeTypeAndValue, AttributeValue, Name, RelativeDistinguishedName, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { toArrayBuffer } from '../core/bytes';

export function buildCsr(opts: { serial: string; model: string; organization?: string; spki: Buffer; sign: (data: Buffer) => Buffer }): Buffer {
  const rdn = (type: string, value: string) =>
    new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value: new AttributeValue({ printableString: value }) })]);
  const info = new CertificationRequestInfo({
    version: 0,
    subject: new Name([...(opts.organization ? [rdn('2.5.4.10', opts.organization)] : []), rdn('2.5.4.3', opts.model), rdn('2.5.4.5', opts.serial)]),
    subjectPKInfo: AsnConvert.parse(opts.spki, SubjectPublicKeyInfo),
    attributes: new Attributes(),
  });
  const infoDer = Buffer.from(AsnConvert.serialize(info));
  const signature = opts.sign(infoDer);
  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: new AlgorithmIdentifier({ algorithm: '1.2.840.10045.4.3.2' }),
    signature: toArrayBuffer(signature),
  });
  return Buffer.from(AsnConvert.serialize(csr));
}
