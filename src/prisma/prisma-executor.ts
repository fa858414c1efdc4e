import type { Executor, SideChannel } from '../core/executor.js';
import type { PrismaRawLike } from './prisma-like.js';

/** Runs ormlock's SQL through `$queryRawUnsafe`: values stay bound parameters. */
export function prismaQuery(target: PrismaRawLike): SideChannel['query'] {
  return async <T>(text: string, params: readonly unknown[] = []) => (await target.$queryRawUnsafe<T[]>(text, ...params)) ?? [];
}

/** Runs ormlock's SQL through `$executeRawUnsafe` (when the client has it): resolves the number of rows it changed. */
export function prismaExecute(target: PrismaRawLike): Executor['execute'] {
  const execute = (target as { $executeRawUnsafe?: (query: string, ...values: unknown[]) => PromiseLike<number> }).$executeRawUnsafe;
  if (typeof execute !== 'function') return undefined;
  return async (text, params) => Number(await execute.call(target, text, ...params));
}

export function prismaExecutor(target: PrismaRawLike, inTransaction: boolean, sideChannel: SideChannel, deadline?: number): Executor {
  return {
    query: prismaQuery(target),
    inTransaction,
    sideChannel,
    deadline,
    deadlineSource: "the interactive transaction's timeout",
  };
}
