interface RuntimeModel {
  dbName?: string | null;
  schema?: string | null;
}

/**
 * Maps a table back to the Prisma model stored in it, from the client's runtime data model
 * (`@@map`, `@@schema`), for `inspect()`. A model without `@@schema` matches its table in any schema.
 */
export function modelOfTable(client: object): (schema: string, table: string) => string | undefined {
  let index: Map<string, { model: string; schema: string | null }[]> | undefined;
  return (schema, table) => {
    if (index === undefined) {
      index = new Map();
      const models = (client as { _runtimeDataModel?: { models?: Record<string, RuntimeModel> } })._runtimeDataModel?.models ?? {};
      for (const [model, runtime] of Object.entries(models)) {
        const name = runtime.dbName ?? model;
        const list = index.get(name) ?? [];
        list.push({ model, schema: runtime.schema ?? null });
        index.set(name, list);
      }
    }
    const candidates = index.get(table) ?? [];
    return (candidates.find((candidate) => candidate.schema === schema) ?? candidates.find((candidate) => candidate.schema === null))?.model;
  };
}
