import { ForbiddenError } from '../errors.js';
import type { Principal } from './principal.js';

/**
 * Who may do what (the contract's "Who may do what"; the permission table in
 * docs/legacy-contract.md, which the authorization matrix test reads, is this table in words).
 */
export type PrincipalKind = 'lab_staff' | 'organization_user' | 'doctor';
export type Operation =
  | 'read'
  | 'resolve'
  | 'capture'
  | 'config_write'
  | 'entity_retry'
  | 'settings_write'
  | 'assign';

export const PERMISSIONS: Readonly<Record<Operation, readonly PrincipalKind[]>> = {
  read: ['lab_staff', 'organization_user', 'doctor'],
  resolve: ['lab_staff', 'organization_user', 'doctor'],
  capture: ['lab_staff', 'organization_user', 'doctor'],
  config_write: ['lab_staff'],
  entity_retry: ['lab_staff'],
  settings_write: ['lab_staff'],
  assign: ['lab_staff'],
};

/** Lab-wide staff: role lab_user without an organization (by session: not a doctor, no org_id). */
export function kindOf(principal: Principal): PrincipalKind {
  if (principal.orgId !== null) return 'organization_user';
  return principal.role === 'doctor' ? 'doctor' : 'lab_staff';
}

const WHAT: Record<Operation, string> = {
  read: 'read this lab',
  resolve: 'resolve or reopen rows',
  capture: 'capture saves',
  config_write: "change the lab's placeholder configs",
  entity_retry: 'retry entity creations',
  settings_write: "change the lab's settings",
  assign: 'assign rows',
};

/** Throws a 403 unless the principal's kind may do the operation. */
export function requirePermission(principal: Principal, operation: Operation): Principal {
  if (PERMISSIONS[operation].includes(kindOf(principal))) return principal;
  throw new ForbiddenError(`Only lab-wide staff may ${WHAT[operation]}`);
}
