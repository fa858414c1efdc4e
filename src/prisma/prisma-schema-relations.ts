/**
 * What the client's runtime data model leaves out about relations, read from the Prisma schema
 * the client embeds (`inlineSchema`): whether a relation field is a list, whether it is optional,
 * and the `fields` / `references` of its `@relation(…)`; and which field is the model's `@id`.
 * Prisma 7 prunes the runtime data model to names, kinds, types and `relationName`; the schema
 * text is the only place left that says which side of a relation holds the foreign key, or which
 * column is the primary key.
 */

/** A relation field as declared in the schema: `fromAccount Account @relation("outgoing", fields: [fromId], references: [id])`. */
export interface DeclaredRelationField {
  readonly isList: boolean;
  readonly isOptional: boolean;
  /** This model's fields holding the foreign key (`fields: […]`); empty on the side without it. */
  readonly fields: readonly string[];
  /** The related model's fields they reference (`references: […]`). */
  readonly references: readonly string[];
  /** The field carries `@id` (the model's one-field primary key). */
  readonly isId: boolean;
  /** The native type of `@db.Money` and the like (`'Money'`), if declared. */
  readonly nativeType: string | undefined;
}

/** Declared relation fields by model name, then field name. */
export type DeclaredRelations = ReadonlyMap<string, ReadonlyMap<string, DeclaredRelationField>>;

/**
 * Parses the `model` blocks of a Prisma schema for their fields' declarations (list or optional
 * markers, `@relation`, `@id`: the caller keeps what it needs of each). Comments and string
 * literals are skipped, so a `}` or `//` inside a default value or a doc comment does not end a
 * block.
 */
export function parseDeclaredRelations(schema: string): DeclaredRelations {
  const models = new Map<string, Map<string, DeclaredRelationField>>();
  const text = stripComments(schema);
  const blockStart = /\bmodel\s+([A-Za-z_][A-Za-z0-9_]*)\s*\{/g;
  for (let match = blockStart.exec(text); match !== null; match = blockStart.exec(text)) {
    const bodyStart = blockStart.lastIndex;
    const bodyEnd = closingBrace(text, bodyStart);
    const fields = new Map<string, DeclaredRelationField>();
    for (const line of text.slice(bodyStart, bodyEnd).split('\n')) {
      const field = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s+([A-Za-z_][A-Za-z0-9_.]*)\s*(\[\])?\s*(\?)?(.*)$/.exec(line);
      if (!field) continue;
      const [, name, , list, optional, rest = ''] = field;
      const relation = /@relation\s*\(([^)]*)\)/.exec(rest)?.[1] ?? '';
      fields.set(name as string, {
        isList: list !== undefined,
        isOptional: optional !== undefined,
        fields: listArgument(relation, 'fields'),
        references: listArgument(relation, 'references'),
        isId: /@id\b/.test(rest),
        nativeType: /@db\.([A-Za-z]+)/.exec(rest)?.[1],
      });
    }
    models.set(match[1] as string, fields);
    blockStart.lastIndex = bodyEnd;
  }
  return models;
}

/** The schema with `//` comments blanked out (newlines kept) and string contents blanked, so braces in them do not count. */
function stripComments(schema: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < schema.length; i += 1) {
    const char = schema[i] as string;
    if (inString) {
      if (char === '\\') {
        out += '  ';
        i += 1;
      } else if (char === '"') {
        inString = false;
        out += char;
      } else out += char === '\n' ? '\n' : ' ';
    } else if (char === '"') {
      inString = true;
      out += char;
    } else if (char === '/' && schema[i + 1] === '/') {
      while (i < schema.length && schema[i] !== '\n') i += 1;
      out += '\n';
    } else out += char;
  }
  return out;
}

function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let i = from; i < text.length; i += 1) {
    if (text[i] === '{') depth += 1;
    else if (text[i] === '}' && --depth === 0) return i;
  }
  return text.length;
}

/** `fields: [a, b]` inside `@relation(…)` → `['a', 'b']`. */
function listArgument(args: string, name: string): string[] {
  const list = new RegExp(`\\b${name}\\s*:\\s*\\[([^\\]]*)\\]`).exec(args)?.[1];
  if (list === undefined) return [];
  return list
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}
