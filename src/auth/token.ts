import { SignJWT } from 'jose';
import type { Role } from './principal.js';

export interface TokenClaims {
  labId: number;
  userId: number;
  role?: Role;
  orgId?: number | null;
  /** Lifetime in seconds; negative mints an expired token. */
  expiresInSeconds?: number;
  /** `iss` and `aud`, for a service that requires them (AUTH_JWT_ISSUER, AUTH_JWT_AUDIENCE). */
  issuer?: string;
  audience?: string;
}

/** Mints an HS256 bearer token with the contract's claims (for the token helper, the simulator and tests). */
export async function mintToken(secret: string, claims: TokenClaims): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    lab_id: claims.labId,
    user_id: claims.userId,
    role: claims.role ?? 'lab_user',
  };
  if (claims.orgId != null) payload.org_id = claims.orgId;
  const token = new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt(now)
    .setExpirationTime(now + (claims.expiresInSeconds ?? 3600));
  if (claims.issuer) token.setIssuer(claims.issuer);
  if (claims.audience) token.setAudience(claims.audience);
  return token.sign(new TextEncoder().encode(secret));
}
