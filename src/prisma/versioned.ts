import { Prisma } from '@prisma/client/extension';
import { InvalidLockArgumentError } from '../core/errors.js';
import { checkVersion, staleVersionError } from '../core/stale-version.js';

/** Per-model name of the version field: `{ Account: 'revision' }`. Models not listed use `version`. */
export type VersionFieldMap = { readonly [Model: string]: string };

type ModelNameOf<T> = Prisma.Payload<T>['name'];
type ScalarsOf<T> = Prisma.Payload<T>['scalars'];
type UpdateArgsOf<T> = Prisma.Args<T, 'update'>;
type DeleteArgsOf<T> = Prisma.Args<T, 'delete'>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** The version field of model delegate `T`: its entry in the extension's `versionField` map, else `'version'`. */
export type VersionFieldOf<T, VF extends VersionFieldMap> = ModelNameOf<T> extends keyof VF ? VF[ModelNameOf<T>] & string : 'version';

/** Whether model delegate `T` has an integer (or bigint) field named `F`. */
export type HasVersionField<T, F extends string> = F extends keyof ScalarsOf<T> ? (ScalarsOf<T>[F] extends number | bigint ? true : false) : false;

/** Arguments of `prisma.<model>.deleteVersioned`. */
export interface DeleteVersionedArgs<T, F extends string> {
  /** Which row, as in `delete`: a unique field, optionally with more filters. */
  readonly where: DeleteArgsOf<T>['where'];
  /** The version you read; the write happens only if the row still has it. */
  readonly version: F extends keyof ScalarsOf<T> ? ScalarsOf<T>[F] : never;
  /** Which fields to return, as in Prisma's own call. */
  readonly select?: DeleteArgsOf<T>['select'];
  /** Which relations to return with the row, as in Prisma's own call. */
  readonly include?: DeleteArgsOf<T>['include'];
  /** Which fields to leave out, as in Prisma's own call. */
  readonly omit?: DeleteArgsOf<T>['omit'];
}

/** Arguments of `prisma.<model>.updateVersioned`. */
export interface UpdateVersionedArgs<T, F extends string> {
  /** Which row, as in `update`: a unique field, optionally with more filters. */
  readonly where: UpdateArgsOf<T>['where'];
  /** The version you read; the write happens only if the row still has it. */
  readonly version: F extends keyof ScalarsOf<T> ? ScalarsOf<T>[F] : never;
  /** The change, as in `update`, without the version field: it is incremented for you. */
  readonly data: DistributiveOmit<UpdateArgsOf<T>['data'], F>;
  /** Which fields to return, as in Prisma's own call. */
  readonly select?: UpdateArgsOf<T>['select'];
  /** Which relations to return with the row, as in Prisma's own call. */
  readonly include?: UpdateArgsOf<T>['include'];
  /** Which fields to leave out, as in Prisma's own call. */
  readonly omit?: UpdateArgsOf<T>['omit'];
}

/**
 * `unknown` on models with an integer version field; on others an object the delegate lacks, so
 * a call there does not compile and the message names the reason.
 */
export type VersionedModelGuard<T, VF extends VersionFieldMap> =
  HasVersionField<T, VersionFieldOf<T, VF>> extends true
    ? unknown
    : { readonly 'ormlock: this model has no Int or BigInt version field (set lockExtension({ versionField }))': never };

// A type alias, not an interface: Prisma's `$allModels` wants an index-signature-compatible object.
/** The model methods `lockExtension()` adds to every model. */
export type VersionedModelMethods<VF extends VersionFieldMap> = {
  /**
   * Compare-and-swap on the model's version field (`version`, or the one set in
   * `lockExtension({ versionField })`): updates the row only if its version is still `version`,
   * increments the version in the same statement, and resolves the updated row. If no row
   * matched, throws `StaleVersionError` with `reason` `'gone'` (no row matches `where` any more)
   * or `'version-mismatch'` (and the row's `actual` version). Holds no lock; works on the client
   * and on a transaction client. Only models with an integer version field accept a call.
   *
   * @example
   * ```ts
   * await withRetry(async () => {
   *   const account = await prisma.account.findUniqueOrThrow({ where: { id } });
   *   return prisma.account.updateVersioned({
   *     where: { id },
   *     version: account.version,
   *     data: { balance: account.balance.plus(amount) },
   *   });
   * });
   * ```
   */
  updateVersioned<T, const A extends UpdateVersionedArgs<T, VersionFieldOf<T, VF>>>(
    this: T & VersionedModelGuard<T, VF>,
    args: Prisma.Exact<A, UpdateVersionedArgs<T, VersionFieldOf<T, VF>>>,
  ): Promise<Prisma.Result<T, A, 'update'>>;
  /**
   * Deletes the row only if its version is still `version`, and resolves the deleted row;
   * otherwise throws `StaleVersionError` (`'gone'` or `'version-mismatch'`).
   *
   * @example
   * ```ts
   * await prisma.account.deleteVersioned({ where: { id }, version: account.version });
   * ```
   */
  deleteVersioned<T, const A extends DeleteVersionedArgs<T, VersionFieldOf<T, VF>>>(
    this: T & VersionedModelGuard<T, VF>,
    args: Prisma.Exact<A, DeleteVersionedArgs<T, VersionFieldOf<T, VF>>>,
  ): Promise<Prisma.Result<T, A, 'delete'>>;
};

/** What the versioned methods need of a model delegate at run time. */
interface DelegateLike {
  update(args: unknown): Promise<unknown>;
  delete(args: unknown): Promise<unknown>;
  findUnique(args: unknown): Promise<Record<string, unknown> | null>;
}

/**
 * The fields of a model in Prisma's runtime data model: `undefined` when the client does not
 * expose its data model (then nothing is checked up front), `null` for a model it does not have.
 */
export type ModelFieldsOf = (model: string) => readonly { readonly name: string; readonly type: string }[] | null | undefined;

const VERSION_TYPES = new Set(['Int', 'BigInt']);

/**
 * The `model` component of the extension when the data model is known: `{ counter: methods, … }`
 * for the models whose version field (`versionField`, else `version`) is an Int or BigInt.
 */
export function versionedModelProps<M>(
  versionField: VersionFieldMap,
  fieldsOf: ModelFieldsOf,
  modelNames: readonly string[],
  methods: M,
): Record<string, M> {
  const props: Record<string, M> = {};
  for (const model of modelNames) {
    const field = Object.hasOwn(versionField, model) ? versionField[model] : 'version';
    const found = fieldsOf(model)?.find((candidate) => candidate.name === field);
    if (found !== undefined && VERSION_TYPES.has(found.type)) {
      props[model.charAt(0).toLowerCase() + model.slice(1)] = methods;
    } else if (Object.hasOwn(versionField, model)) {
      // Named on purpose but unusable: say so now rather than leave the model without the methods.
      throw new InvalidLockArgumentError(`versionField.${model}`, `model ${model} has no Int or BigInt field "${String(field)}"`);
    }
  }
  return props;
}
// Prisma's "An operation failed because it depends on one or more records that were required but not found."
const PRISMA_NOT_FOUND = 'P2025';

/**
 * Builds the `$allModels` methods of the extension. `versionField` maps model names to their
 * version field; `fieldsOf` lets a misconfigured model fail with a clear message before any SQL.
 */
export function versionedModelMethods<VF extends VersionFieldMap>(versionField: VF, fieldsOf: ModelFieldsOf): VersionedModelMethods<VF> {
  if (versionField === null || typeof versionField !== 'object') {
    throw new InvalidLockArgumentError('versionField', 'expected an object of model names to field names');
  }
  // A typo in a model name would silently leave that model on `version`: refuse it up front.
  for (const model of Object.keys(versionField)) {
    if (fieldsOf(model) === null) throw new InvalidLockArgumentError(`versionField.${model}`, `the client has no model ${model}`);
  }
  const fieldOf = (model: string): string => {
    const field = Object.hasOwn(versionField, model) ? versionField[model] : 'version';
    if (typeof field !== 'string' || field.length === 0) {
      throw new InvalidLockArgumentError(`versionField.${model}`, 'expected the name of an integer field');
    }
    const fields = fieldsOf(model) ?? undefined;
    const found = fields?.find((candidate) => candidate.name === field);
    if (fields !== undefined && (found === undefined || !VERSION_TYPES.has(found.type))) {
      throw new InvalidLockArgumentError(
        `versionField.${model}`,
        `model ${model} has no Int or BigInt field "${field}"; add one, or name it in lockExtension({ versionField: { ${model}: '…' } })`,
      );
    }
    return field;
  };

  const run = async (that: unknown, operation: 'update' | 'delete', args: Record<string, unknown>): Promise<unknown> => {
    const context = Prisma.getExtensionContext(that) as unknown as DelegateLike & { $name?: string };
    const model = context.$name ?? 'model';
    const field = fieldOf(model);
    if (args === null || typeof args !== 'object') throw new InvalidLockArgumentError('args', 'expected { where, version, … }');
    const { where, version, data, ...rest } = args;
    if (where === null || typeof where !== 'object') throw new InvalidLockArgumentError('where', 'expected the unique fields of the row');
    if (Object.hasOwn(where, field)) {
      throw new InvalidLockArgumentError(`where.${field}`, 'pass the version you read as `version`, not in `where`');
    }
    checkVersion(version, 'version');
    const guarded = { ...where, [field]: version };
    try {
      if (operation === 'delete') return await context.delete({ ...rest, where: guarded });
      if (data === null || typeof data !== 'object') throw new InvalidLockArgumentError('data', 'expected the fields to change');
      if (Object.hasOwn(data, field)) {
        throw new InvalidLockArgumentError(`data.${field}`, 'the version field is incremented by updateVersioned; leave it out of `data`');
      }
      // One statement: Prisma turns the extra `where` field into a filter of the same UPDATE, so
      // the compare and the swap cannot be split by another writer.
      return await context.update({ ...rest, where: guarded, data: { ...data, [field]: { increment: 1 } } });
    } catch (error) {
      if ((error as { code?: unknown } | null)?.code !== PRISMA_NOT_FOUND) throw error;
      const current = await context.findUnique({ where, select: { [field]: true } });
      throw staleVersionError(version, current?.[field], { model }, { cause: error }) ?? error;
    }
  };

  return {
    updateVersioned(args) {
      return run(this, 'update', args as Record<string, unknown>) as never;
    },
    deleteVersioned(args) {
      return run(this, 'delete', args as Record<string, unknown>) as never;
    },
  };
}
