import { InvalidLockArgumentError } from './errors.js';

/**
 * A length of time: a number of milliseconds, or a string such as `'500ms'`, `'5s'`, `'2m'`, `'1h'`.
 */
export type Duration = number | `${number}${DurationUnit}`;
type DurationUnit = 'ms' | 's' | 'm' | 'h';

const UNIT_MS: Record<DurationUnit, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/** PostgreSQL keeps timeouts in an `int` of milliseconds. */
export const MAX_DURATION_MS = 2_147_483_647;

/**
 * Parses a {@link Duration} to whole milliseconds (rounded up, so a bound is never shortened).
 * Throws {@link InvalidLockArgumentError} for negative, non-finite, malformed or too long values.
 */
export function parseDuration(value: unknown, argument: string): number {
  let ms: number;
  if (typeof value === 'number') {
    ms = value;
  } else if (typeof value === 'string') {
    const match = PATTERN.exec(value.trim());
    if (!match) {
      throw new InvalidLockArgumentError(argument, `expected milliseconds or a string like '500ms', '5s', '2m', got ${describe(value)}`);
    }
    // Kept to whole microseconds, as PostgreSQL keeps an interval: the decimal '8.005s' is
    // 8005.000000000001 ms in binary floating point, which the ceiling below would make 8006.
    ms = Math.round(Number(match[1]) * UNIT_MS[match[2] as DurationUnit] * 1_000) / 1_000;
  } else {
    throw new InvalidLockArgumentError(argument, `expected a duration, got ${describe(value)}`);
  }
  if (!Number.isFinite(ms) || ms < 0) {
    throw new InvalidLockArgumentError(argument, `expected a finite, non-negative duration, got ${describe(value)}`);
  }
  const whole = Math.ceil(ms);
  if (whole > MAX_DURATION_MS) {
    throw new InvalidLockArgumentError(argument, `at most ${MAX_DURATION_MS} ms (PostgreSQL's limit), got ${describe(value)}`);
  }
  return whole;
}

/** Renders a caller's value for an error message without echoing huge inputs. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value === null || typeof value !== 'object') return String(value);
  return 'an object';
}
