// @blackice/flight-security: HMAC request authentication, Merkle integrity, TLS description,
// basic → bearer handshake, JWT bearer authentication, authorization and attestation. Depends
// on core and `jose` (pure JS, for JWTs) only (no gRPC). The stream helpers its middleware
// use inside (the running HMAC stream digest and seal, peekFirst) are not exported.

// ---- for server users (and their clients) ----
export { hmacAuth, HMAC_FAILURE_REASONS } from "./hmac-auth";
export type { HmacAuthOptions, HmacKey, HmacFailureReason } from "./hmac-auth";
export { hmacSigner } from "./hmac-signer";
export type { HmacSignerOptions } from "./hmac-signer";
export { HMAC_HEADERS, HMAC_SIGNATURE_VERSION } from "./hmac-canonical-string";
export type { HmacSignatureVersion } from "./hmac-canonical-string";
export { HMAC_SEAL_PREFIX } from "./hmac-stream-seal";
export { merkleIntegrity, MERKLE_PROOF_ACTION } from "./merkle-integrity";
export type { MerkleIntegrityOptions } from "./merkle-integrity";
export { readMerkleMetadata } from "./read-merkle-metadata";
export { merkleKeyId, merkleRootStatement, verifyMerkleSignature } from "./merkle-root-signature";
export type { MerkleSigningKey, MerkleTrustedKeys } from "./merkle-root-signature";
export type { MerkleMetadata, MerkleProof } from "./read-merkle-metadata";
export { verifyFlightStream, verifyBatchProof } from "./verify-flight-stream";
export type { MerkleExpectation, VerifyFlightStreamOptions } from "./verify-flight-stream";
export { basicTokenAuth, BASIC_AUTH_FAILURE_REASONS, REVOKE_TOKEN_ACTION } from "./basic-token-auth";
export type { BasicTokenAuthOptions, ValidatedUser } from "./basic-token-auth";
export { jwtAuth, JWT_ALGORITHMS, JWT_FAILURE_REASONS } from "./jwt-auth";
export type { JwtAuthOptions, JwtAlgorithm, JwtFailureReason } from "./jwt-auth";
export { ADMIN_ROLE, hasRole, isOperator, kAuthenticationConfigured, kIdentity, identityOf } from "./identity-of";
export type { Identity, IdentityClaims } from "./identity-of";
export { authorize } from "./authorize";
export type { AccessOperation, AccessPolicy, AccessRequest, AuthorizeOptions } from "./authorize";
export { pathPrefixPolicy } from "./path-prefix-policy";
export type { PathGrants, PathPrefixPolicyOptions } from "./path-prefix-policy";
export { attestation, attestationOf, kAttestation } from "./attestation";
export type { AttestationOptions, AttestationResult, AttestationVerdict } from "./attestation";
export { mtlsIdentity } from "./mtls-identity";
export type { MtlsIdentityOptions, MtlsSubjectSource } from "./mtls-identity";
export { tls } from "./tls";
export type { TlsOptions } from "./tls";

// ---- for middleware authors ----
export { hmacCanonicalString, EMPTY_BODY_SHA256 } from "./hmac-canonical-string";
export type { HmacSignedFields } from "./hmac-canonical-string";
export { encodeFlightDescriptor, decodeFlightDescriptor, canonicalizeFlightDescriptor } from "./encode-flight-descriptor";
export { readProtobufFields, ProtobufDecodeError } from "./read-protobuf-fields";
export type { ProtobufField } from "./read-protobuf-fields";
export { NonceCache } from "./nonce-cache";
export type { NonceAddResult } from "./nonce-cache";
export { MERKLE_ALGORITHM, MerkleTree, emptyTreeRoot, inclusionProof, leafHash, merkleRoot, nodeHash, verifyInclusion } from "./merkle-tree";
export { MerkleBuilder } from "./merkle-builder";
export { flightDataLeaf, flightDataLeafHash } from "./flight-data-leaf";
export type { LeafMessage } from "./flight-data-leaf";
export { isPathDescriptor } from "./authorize";
