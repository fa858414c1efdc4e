import { Decimal } from '@prisma/client/runtime/client';
import { describe } from '../core/duration.js';
import { InvalidLockArgumentError } from '../core/errors.js';
import type { Row } from '../core/executor.js';
import type { SelectColumn, TableRef } from '../core/row-lock.js';

/** One scalar field of a Prisma model, with its database column. */
export interface PrismaScalarField {
  /** The Prisma field name. */
  readonly name: string;
  /** The column in the database (`@map`), or the field name. */
  readonly column: string;
  /** Prisma's scalar type (`Int`, `Decimal`, `DateTime`, `Json` …), or the enum's name. */
  readonly type: string;
  readonly kind: 'scalar' | 'enum';
  readonly isList: boolean;
}

/** A Prisma model as ormlock needs it: where its table is, and its scalar fields. */
export interface PrismaModelInfo {
  readonly name: string;
  readonly table: TableRef;
  readonly fields: ReadonlyMap<string, PrismaScalarField>;
  readonly columns: readonly SelectColumn[];
}

interface RuntimeField {
  name: string;
  kind: string;
  type: string;
  dbName?: string | null;
  isList?: boolean;
}
interface RuntimeModel {
  dbName?: string | null;
  schema?: string | null;
  fields: RuntimeField[];
}
interface RuntimeDataModel {
  models: Record<string, RuntimeModel>;
}

/**
 * Reads model → table and field → column mappings from the client's runtime data model (what
 * `prisma generate` embeds in the client: `@@map`, `@map`, `@@schema`). Models without
 * `@@schema` use the adapter's `schema` option if it has one, else the connection's `search_path`.
 */
export function modelResolver(client: object): (model: unknown) => PrismaModelInfo {
  const cache = new Map<string, PrismaModelInfo>();
  return (model) => {
    if (typeof model !== 'string') throw new InvalidLockArgumentError('model', `expected a model name such as 'Account', got ${describe(model)}`);
    const cached = cache.get(model);
    if (cached) return cached;
    const dataModel = (client as { _runtimeDataModel?: RuntimeDataModel })._runtimeDataModel;
    if (!dataModel?.models) throw new InvalidLockArgumentError('model', 'this Prisma client exposes no runtime data model (ormlock/prisma needs Prisma ≥ 7)');
    if (!Object.hasOwn(dataModel.models, model)) {
      const known = Object.keys(dataModel.models);
      throw new InvalidLockArgumentError('model', `unknown model ${describe(model)}; the client's models are ${known.map((m) => `'${m}'`).join(', ')}`);
    }
    const runtime = dataModel.models[model] as RuntimeModel;
    const fields = new Map<string, PrismaScalarField>();
    for (const field of runtime.fields) {
      if (field.kind !== 'scalar' && field.kind !== 'enum') continue;
      fields.set(field.name, {
        name: field.name,
        column: field.dbName ?? field.name,
        type: field.type,
        kind: field.kind,
        isList: field.isList === true,
      });
    }
    const info: PrismaModelInfo = {
      name: model,
      table: { schema: runtime.schema ?? adapterSchema(client) ?? null, name: runtime.dbName ?? model },
      fields,
      columns: [...fields.values()].map((field) => ({ column: field.column, as: field.name })),
    };
    cache.set(model, info);
    return info;
  };
}

function adapterSchema(client: object): string | undefined {
  const schema = (client as { _engineConfig?: { adapter?: { options?: { schema?: unknown } } } })._engineConfig?.adapter?.options?.schema;
  return typeof schema === 'string' && schema.length > 0 ? schema : undefined;
}

/**
 * Turns rows of a raw query (columns already aliased to field names) into the values Prisma's own
 * queries return. `$queryRawUnsafe` already decodes most types; this makes the model's declared
 * types certain: `Decimal` as Prisma's Decimal, `BigInt` as bigint, `DateTime` as Date.
 */
export function toModelRows<T>(info: PrismaModelInfo, rows: Row[]): T[] {
  for (const row of rows) {
    for (const field of info.fields.values()) {
      const value = row[field.name];
      if (value === null || value === undefined || field.isList) continue;
      switch (field.type) {
        case 'Decimal':
          if (!Decimal.isDecimal(value)) row[field.name] = new Decimal(String(value));
          break;
        case 'BigInt':
          if (typeof value !== 'bigint') row[field.name] = BigInt(value as string | number);
          break;
        case 'DateTime':
          if (!(value instanceof Date)) row[field.name] = new Date(value as string);
          break;
        default:
          break;
      }
    }
  }
  return rows as T[];
}
