import type { Prisma } from '@prisma/client/extension';
import { describe } from '../core/duration.js';
import { InvalidLockArgumentError } from '../core/errors.js';
import type { Executor, Row } from '../core/executor.js';
import {
  ROW_LOCK_OPTION_NAMES,
  type RowJoin,
  type RowLockOptions,
  type RowLockStrength,
  checkOptionNames,
  claimRows,
  countOption,
  lockRows,
  planRowWait,
} from '../core/row-lock.js';
import type { LockBinding } from '../core/run-under-lock.js';
import { type TableLockOptions, lockTables, planTableLock } from '../core/table-lock.js';
import { type PrismaModelInfo, toModelRows } from './prisma-model.js';
import { aliasMaker, translateOrderBy, translateSet, translateWhere } from './prisma-where.js';

/**
 * The model names of Prisma client type `C` (`'Account' | 'Job' …`), read from its model
 * delegates. `string` when the client type is not known.
 */
export type PrismaModelName<C> = unknown extends C
  ? string
  : { [K in keyof C & string]: C[K] extends { findMany: unknown; fields: unknown } ? Capitalize<K> : never }[keyof C & string];

type DelegateOf<C, M extends string> = C[Uncapitalize<M> & keyof C];
type FindManyArgsOf<C, M extends string> = unknown extends C ? Record<string, any> : Prisma.Args<DelegateOf<C, M>, 'findMany'>;
type UpdateManyArgsOf<C, M extends string> = unknown extends C ? Record<string, any> : Prisma.Args<DelegateOf<C, M>, 'updateMany'>;

/** A row of model `M` as Prisma returns it (field names, Prisma's value types). */
export type PrismaModelRow<C, M extends string> = unknown extends C ? Record<string, unknown> : Prisma.Result<DelegateOf<C, M>, object, 'findFirstOrThrow'>;

/** The `where` of model `M`, as `findMany` takes it. */
export type PrismaWhere<C, M extends string> = FindManyArgsOf<C, M> extends { where?: infer W } ? W : never;
/** The `orderBy` of model `M`, as `findMany` takes it. */
export type PrismaOrderBy<C, M extends string> = FindManyArgsOf<C, M> extends { orderBy?: infer O } ? O : never;

/**
 * The to-one relation fields of model `M` (`'fromAccount' | 'toAccount' | …`): those `of` can
 * lock. `string` when the client type is not known.
 */
export type PrismaToOneRelation<C, M extends string> = unknown extends C
  ? string
  : Prisma.Payload<C[Uncapitalize<M> & keyof C]> extends {
        /** The model's relation fields, in Prisma's payload type (a list type for a to-many relation). */
        objects: infer O;
      }
    ? { [K in keyof O & string]: O[K] extends readonly unknown[] ? never : K }[keyof O & string]
    : never;

/** What `tx.$lock.row(model, query)` takes. */
export type PrismaRowQuery<C, M extends string> = {
  /**
   * Which rows, as in `findMany`: scalar filters, `AND` / `OR` / `NOT`, and relation filters
   * (`fromAccount: { owner: 'ann' }`, `{ is }`, `{ isNot }`, `null`, `{ some | every | none }`),
   * which read the related rows without locking them (see the README for the list).
   */
  readonly where?: PrismaWhere<C, M>;
  /** The order rows are locked and returned in. Lock in a fixed order to avoid deadlocks. */
  readonly orderBy?: PrismaOrderBy<C, M>;
  /** At most this many rows. */
  readonly take?: number;
  /** Skip this many rows first. */
  readonly skip?: number;
  /**
   * To-one relations whose rows are locked too, in the same statement and with the same
   * `strength` / `nowait` / `skipLocked` (`SELECT … FROM transfers JOIN accounts … FOR UPDATE OF
   * transfers, <accounts alias>`). The model's own rows are always locked; its own name may be
   * listed and changes nothing. The rows returned are still the model's own, one per row.
   *
   * Each relation is an inner join (PostgreSQL cannot lock the nullable side of an outer join):
   * a row whose optional relation is empty is not selected. Relations only filtered in `where`
   * are read, never locked. To-many relations cannot be listed: lock those rows with a `row()`
   * of their own model.
   *
   * @example
   * ```ts
   * // The transfer and both of its accounts, in one statement.
   * const [transfer] = await tx.$lock.row('Transfer', { where: { id }, of: ['fromAccount', 'toAccount'] });
   * ```
   */
  readonly of?: readonly NoInfer<PrismaToOneRelation<C, M> | M>[];
} & RowLockOptions;

/** What `tx.$lock.claim(model, query)` takes. */
export interface PrismaClaimQuery<C, M extends string> {
  /** Which rows may be claimed, as in `findMany` (e.g. `{ status: 'pending' }`; relation filters too). A claim takes no `of`: it locks the rows it claims only. */
  readonly where?: PrismaWhere<C, M>;
  /** Which rows to claim first (e.g. `{ id: 'asc' }` for FIFO). */
  readonly orderBy?: PrismaOrderBy<C, M>;
  /** How many rows to claim at most. Default 1. */
  readonly take?: number;
  /** Values to write to the claimed rows in the same statement, as `updateMany`'s `data`. */
  readonly set?: UpdateManyArgsOf<C, M> extends { data: infer D } ? D : never;
  /** `'update'` (default) or `'noKeyUpdate'` (does not block foreign-key checks on the rows). */
  readonly strength?: Extract<RowLockStrength, 'update' | 'noKeyUpdate'>;
}

/** Row and table locks on a Prisma client, typed by its models. */
export interface PrismaRowLocks<C> {
  /**
   * Locks the rows of `model` that `where` selects (`SELECT … FOR UPDATE`) and returns them as
   * Prisma would, in `orderBy` order. Held until the transaction ends; call it on `tx.$lock`.
   * A busy row waits (bounded by `timeout`, and by the interactive transaction's own timeout), or
   * fails at once with `nowait`, or is left out with `skipLocked`.
   *
   * @example
   * ```ts
   * await prisma.$transaction(async (tx) => {
   *   // Lock both accounts in id order, so two opposite transfers cannot deadlock.
   *   const [a, b] = await tx.$lock.row('Account', { where: { id: { in: [from, to] } }, orderBy: { id: 'asc' } });
   *   …
   * });
   * ```
   *
   * Relation filters in `where` read related rows without locking them; `of` locks to-one
   * related rows too, in the same statement (inner joins: a row whose optional relation is empty
   * is not selected).
   *
   * @example
   * ```ts
   * // A pending transfer, and both of its accounts.
   * const [transfer] = await tx.$lock.row('Transfer', {
   *   where: { id, status: 'pending', fromAccount: { owner: { not: 'frozen' } } },
   *   of: ['fromAccount', 'toAccount'],
   * });
   * ```
   */
  row<M extends PrismaModelName<C>>(model: M, query?: PrismaRowQuery<C, M>): Promise<PrismaModelRow<C, M>[]>;
  /**
   * Claims up to `take` rows for a worker with `FOR UPDATE SKIP LOCKED`: concurrent workers get
   * disjoint rows. With `set`, the rows are updated in the same statement and the claim works
   * outside a transaction too (`prisma.$lock.claim`); without it, call it on `tx.$lock`.
   *
   * @example
   * ```ts
   * const jobs = await prisma.$lock.claim('Job', {
   *   where: { status: 'pending' }, orderBy: { id: 'asc' }, take: 10,
   *   set: { status: 'running', lockedBy: workerId, attempts: { increment: 1 } },
   * });
   * ```
   */
  claim<M extends PrismaModelName<C>>(model: M, query?: PrismaClaimQuery<C, M>): Promise<PrismaModelRow<C, M>[]>;
  /**
   * Locks whole tables (`LOCK TABLE … IN <mode> MODE`) until the transaction ends. Several models
   * are locked in one statement, in a fixed order. `mode` defaults to `'accessExclusive'`.
   *
   * @example
   * ```ts
   * await prisma.$transaction(async (tx) => {
   *   await tx.$lock.model('Account', { mode: 'share', timeout: '2s' }); // no writes meanwhile
   *   const total = await tx.account.aggregate({ _sum: { balance: true } });
   * });
   * ```
   */
  model(models: PrismaModelName<C> | readonly PrismaModelName<C>[], options?: TableLockOptions): Promise<void>;
}

const ROW_OPTIONS = [...ROW_LOCK_OPTION_NAMES, 'where', 'orderBy', 'take', 'skip', 'of'];
const CLAIM_OPTIONS = ['where', 'orderBy', 'take', 'set', 'strength'];

/**
 * The joins that lock the relations `of` names. Names are checked against the model's relations
 * (the SQL uses the data model's column names and aliases of ormlock's own, never caller text).
 */
function joinsOf(info: PrismaModelInfo, of: unknown): RowJoin[] | undefined {
  if (of === undefined) return undefined;
  if (!Array.isArray(of)) throw new InvalidLockArgumentError('query.of', `expected an array of relation names, got ${describe(of)}`);
  const lockable = [...info.relations.values()].filter((relation) => !relation.isList && relation.problem === undefined).map((relation) => `'${relation.name}'`);
  const alias = aliasMaker('ormlock_j', info.table.name);
  const joins: RowJoin[] = [];
  const seen = new Set<unknown>();
  of.forEach((name: unknown, index) => {
    const at = `query.of[${index}]`;
    if (typeof name !== 'string') throw new InvalidLockArgumentError(at, `expected a relation name, got ${describe(name)}`);
    if (seen.has(name)) return;
    seen.add(name);
    const relation = info.relations.get(name);
    if (relation === undefined) {
      if (name === info.name) return;
      throw new InvalidLockArgumentError(at, `${describe(name)} is not a relation of ${info.name} (to-one relations: ${lockable.join(', ') || 'none'})`);
    }
    if (relation.isList) {
      throw new InvalidLockArgumentError(at, `${name} is a to-many relation; of locks to-one relations only (lock those rows with a row() of ${relation.model})`);
    }
    if (relation.problem !== undefined) throw new InvalidLockArgumentError(at, `cannot lock ${name}: ${relation.problem}`);
    joins.push({ table: relation.target().table, alias: alias(), on: relation.on });
  });
  return joins;
}

/** Builds `row`, `claim` and `model` over a binding resolved at each call. */
export function prismaRowLocks<Tx, TxOptions>(
  bindingOf: () => LockBinding<Tx, TxOptions>,
  resolveModel: (model: unknown) => PrismaModelInfo,
  poolExecutor?: () => Executor | undefined,
): PrismaRowLocks<unknown> {
  return {
    async row(model, query) {
      const info = resolveModel(model);
      const opts = checkOptionNames(query, ROW_OPTIONS, 'query');
      const plan = planRowWait(opts, 'query');
      const spec = {
        table: info.table,
        columns: info.columns,
        joins: joinsOf(info, opts['of']),
        where: translateWhere(info, opts['where']),
        orderBy: translateOrderBy(info, opts['orderBy']),
        limit: countOption(opts['take'], 'query.take'),
        offset: countOption(opts['skip'], 'query.skip'),
      };
      return toModelRows(info, await lockRows<Row>(bindingOf().executor, spec, plan));
    },
    async claim(model, query) {
      const info = resolveModel(model);
      if (typeof query === 'object' && query !== null && Object.hasOwn(query, 'of')) {
        throw new InvalidLockArgumentError('query.of', 'claim() takes no of: it locks the rows it claims only; lock their related rows with row() in the same transaction');
      }
      const opts = checkOptionNames(query, CLAIM_OPTIONS, 'query');
      const { strength = 'update' } = opts;
      const spec = {
        table: info.table,
        columns: info.columns,
        where: translateWhere(info, opts['where']),
        orderBy: translateOrderBy(info, opts['orderBy']),
        limit: countOption(opts['take'], 'query.take') ?? 1,
        key: info.key,
      };
      const set = translateSet(info, opts['set']);
      const binding = bindingOf();
      // A claim that updates is one statement that commits by itself outside a transaction: on
      // the adapter's pg.Pool it skips Prisma's raw-query engine, where the rows read the same.
      const onPool = set !== undefined && binding.kind === 'opener' && info.plainRows ? poolExecutor?.() : undefined;
      return toModelRows(info, await claimRows<Row>(onPool ?? binding.executor, spec, strength, set));
    },
    async model(models, options) {
      const list: unknown[] = Array.isArray(models) ? models : [models];
      const plan = planTableLock(
        list.map((model) => resolveModel(model).table),
        options,
      );
      await lockTables(bindingOf().executor, plan);
    },
  };
}
