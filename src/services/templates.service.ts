import { z } from 'zod';
import type { Em } from '../db/database.js';
import { MissingDetailsTemplate } from '../entities/index.js';

export const MODULES = ['patient', 'bill'] as const;
export type FieldModule = (typeof MODULES)[number];

export const listTemplatesInput = z
  .object({
    module: z.enum(MODULES).optional(),
    includeInactive: z.boolean().default(false),
  })
  .strict()
  .default({ includeInactive: false });
export type ListTemplatesInput = z.infer<typeof listTemplatesInput>;

export interface TemplateView {
  id: number;
  name: string;
  displayName: string;
  module: string;
  category: string;
  entityType: string | null;
  inputType: string;
  sortOrder: number;
  isActive: boolean;
}

export async function listTemplates(
  em: Em,
  input: ListTemplatesInput,
): Promise<{ templates: TemplateView[] }> {
  const rows = await em.find(
    MissingDetailsTemplate,
    {
      ...(input.module ? { module: input.module } : {}),
      ...(input.includeInactive ? {} : { isActive: true }),
    },
    { orderBy: { sortOrder: 'asc', id: 'asc' } },
  );
  return {
    templates: rows.map((t) => ({
      id: t.id,
      name: t.name,
      displayName: t.displayName,
      module: t.module,
      category: t.category,
      entityType: t.entityType ?? null,
      inputType: t.inputType,
      sortOrder: t.sortOrder,
      isActive: t.isActive,
    })),
  };
}
