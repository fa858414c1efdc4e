/**
 * A piece of SQL built by a layer (a Prisma `where`, a rendered Drizzle `SQL`) with its own
 * `$1…$n` placeholders and their values. Core splices fragments into its statements through
 * {@link SqlBuilder}, which renumbers the placeholders, so values always stay bound parameters.
 */
export interface SqlFragment {
  readonly text: string;
  readonly params: readonly unknown[];
}

/** Collects the parameters of one statement while its text is assembled. */
export class SqlBuilder {
  readonly params: unknown[] = [];

  /** Adds a value and returns its placeholder, `$n`. */
  param(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  /** Adds a fragment's values and returns its text with the placeholders renumbered to follow them. */
  fragment(fragment: SqlFragment): string {
    const offset = this.params.length;
    this.params.push(...fragment.params);
    if (offset === 0 || fragment.params.length === 0) return fragment.text;
    return mapPlaceholders(fragment.text, (position) => {
      if (position < 1 || position > fragment.params.length) throw new RangeError(`placeholder $${position} has no parameter`);
      return `$${position + offset}`;
    });
  }
}

/**
 * Calls `visit` for every `$n` placeholder of `text` that stands outside quoted identifiers,
 * string literals and comments, in order, with where it starts and ends and its number.
 * Dollar-quoted strings are not recognised: fragments are built by ormlock or by an ORM's SQL
 * builder, neither of which writes them.
 */
export function forEachPlaceholder(text: string, visit: (start: number, end: number, position: number) => void): void {
  let index = 0;
  while (index < text.length) {
    const char = text[index];
    if (char === '"' || char === "'") {
      index = endOfQuoted(text, index, char);
      continue;
    }
    if (char === '-' && text[index + 1] === '-') {
      const end = text.indexOf('\n', index);
      index = end === -1 ? text.length : end + 1;
      continue;
    }
    if (char === '/' && text[index + 1] === '*') {
      const end = text.indexOf('*/', index + 2);
      index = end === -1 ? text.length : end + 2;
      continue;
    }
    if (char === '$' && isDigit(text.charCodeAt(index + 1)) && !isIdentChar(text.charCodeAt(index - 1))) {
      let end = index + 1;
      while (isDigit(text.charCodeAt(end))) end += 1;
      visit(index, end, Number(text.slice(index + 1, end)));
      index = end;
      continue;
    }
    index += 1;
  }
}

/** Rewrites every placeholder {@link forEachPlaceholder} finds with what `replace` returns for its number. */
export function mapPlaceholders(text: string, replace: (position: number) => string): string {
  let out = '';
  let literalStart = 0;
  forEachPlaceholder(text, (start, end, position) => {
    out += text.slice(literalStart, start) + replace(position);
    literalStart = end;
  });
  return out + text.slice(literalStart);
}

function endOfQuoted(text: string, start: number, quote: string): number {
  let index = start + 1;
  while (index < text.length) {
    if (text[index] === quote) {
      if (text[index + 1] === quote) {
        index += 2;
        continue;
      }
      return index + 1;
    }
    index += 1;
  }
  return index;
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

function isIdentChar(code: number): boolean {
  return isDigit(code) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95;
}
