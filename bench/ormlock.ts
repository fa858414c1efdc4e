/**
 * ormlock as the benchmarks load it: the built package (`dist/`, what an app runs), typed by the
 * sources. `npm run bench` builds it first. Measuring the sources through tsx would add tsx's
 * per-function bookkeeping to every call, which no app pays. `ORMLOCK_BENCH_SOURCE=src` loads the
 * sources instead (to measure a change without building). The lease suite reaches into internals
 * (the heartbeat host) and always runs on the sources.
 */
import { existsSync } from 'node:fs';
import type * as Core from '../src/index.js';
import type * as Drizzle from '../src/drizzle/index.js';
import type * as Pg from '../src/pg/index.js';
import type * as Prisma from '../src/prisma/index.js';

const fromSource = process.env['ORMLOCK_BENCH_SOURCE'] === 'src' || !existsSync(new URL('../dist/pg/index.js', import.meta.url));

/** Where ormlock was loaded from, for the results' notes. */
export const ormlockSource = fromSource ? 'sources (src/, through tsx)' : 'built package (dist/)';

export const core = (await import(fromSource ? '../src/index.js' : '../dist/index.js')) as typeof Core;
export const pgLayer = (await import(fromSource ? '../src/pg/index.js' : '../dist/pg/index.js')) as typeof Pg;
export const drizzleLayer = (await import(fromSource ? '../src/drizzle/index.js' : '../dist/drizzle/index.js')) as typeof Drizzle;
export const prismaLayer = (await import(fromSource ? '../src/prisma/index.js' : '../dist/prisma/index.js')) as typeof Prisma;
