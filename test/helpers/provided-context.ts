/**
 * What `test/global-setup.ts` hands to every test file through vitest's `provide` / `inject`.
 * Import this file (a type import is enough) wherever `inject('ormlock…')` is called, so the
 * augmentation is part of every TypeScript program that checks that call, including the
 * scoped one of `vitest typecheck`.
 */

/** The values provided to test files. */
export interface TestServerContext {
  /** URL of a superuser connection to the test server's `postgres` database. */
  ormlockAdminUrl: string;
  /** URL of the same database on the server itself, never through pgbouncer. */
  ormlockServerUrl: string;
  /** Major version of the test server, e.g. `15` or `18`. */
  ormlockServerVersion: number;
  /** pgbouncer's pool mode when the suite runs through it (`ORMLOCK_TEST_POOLER`), else `'none'`. */
  ormlockPooler: 'none' | 'session' | 'transaction';
  /** Schema of the test tables (`ORMLOCK_TEST_SCHEMA`), `'public'` by default. */
  ormlockSchema: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of a superuser connection to the test server's `postgres` database. */
    ormlockAdminUrl: string;
    /** URL of the same database on the server itself, never through pgbouncer. */
    ormlockServerUrl: string;
    /** Major version of the test server, e.g. `15` or `18`. */
    ormlockServerVersion: number;
    /** pgbouncer's pool mode when the suite runs through it (`ORMLOCK_TEST_POOLER`), else `'none'`. */
    ormlockPooler: 'none' | 'session' | 'transaction';
    /** Schema of the test tables (`ORMLOCK_TEST_SCHEMA`), `'public'` by default. */
    ormlockSchema: string;
  }
}
