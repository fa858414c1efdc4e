import type { Inspection, LockInfo } from '../core/inspect.js';

/** ANSI styles, or none when output is not a terminal. */
export interface Palette {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
  green(text: string): string;
  cyan(text: string): string;
}

const ansi = (open: number, close: number) => (text: string) => `\u001b[${open}m${text}\u001b[${close}m`;

export function palette(color: boolean): Palette {
  if (!color) {
    const plain = (text: string): string => text;
    return { bold: plain, dim: plain, red: plain, yellow: plain, green: plain, cyan: plain };
  }
  return { bold: ansi(1, 22), dim: ansi(2, 22), red: ansi(31, 39), yellow: ansi(33, 39), green: ansi(32, 39), cyan: ansi(36, 39) };
}

/** What a lock is on, for people: `public.accounts (Account)`, `advisory "invoice:42"`, `transaction 1234`. */
export function targetOf(lock: LockInfo): string {
  if (lock.relation) {
    const name = `${lock.relation.schema}.${lock.relation.name}`;
    return lock.relation.model ? `${name} (${lock.relation.model})` : name;
  }
  const key = lock.advisoryKey;
  if (key) {
    if (key.kind === 'pair') return `advisory [${key.namespace}, ${key.id}]`;
    return key.key !== undefined ? `advisory ${JSON.stringify(key.key)}` : `advisory ${key.value}`;
  }
  return lock.lockType;
}

function duration(ms: number | null): string {
  if (ms === null) return '';
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1_000)}s`;
  return `${Math.floor(ms / 3_600_000)}h${Math.floor((ms % 3_600_000) / 60_000)}m`;
}

function oneLine(text: string | null, max: number): string {
  const flat = (text ?? '').replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

interface Session {
  pid: number;
  application: string;
  state: string | null;
  query: string | null;
  transactionStart: Date | null;
  wait?: LockInfo;
}

function sessionsOf(inspection: Inspection): Map<number, Session> {
  const sessions = new Map<number, Session>();
  for (const lock of inspection.locks) {
    const session = sessions.get(lock.pid) ?? { pid: lock.pid, application: lock.application, state: lock.state, query: lock.query, transactionStart: lock.transactionStart };
    if (!lock.granted) session.wait = lock;
    sessions.set(lock.pid, session);
  }
  return sessions;
}

/**
 * The blocking tree: each root holds what others wait for and waits for nobody; below a session,
 * the sessions waiting for it. A cycle (a deadlock PostgreSQL has not broken yet) is shown once.
 */
export function renderTree(inspection: Inspection, p: Palette): string[] {
  const sessions = sessionsOf(inspection);
  const waitersOf = new Map<number, number[]>();
  const blocked = new Set<number>();
  for (const session of sessions.values()) {
    for (const blocker of session.wait?.blockedBy ?? []) {
      blocked.add(session.pid);
      waitersOf.set(blocker, [...(waitersOf.get(blocker) ?? []), session.pid]);
    }
  }
  if (waitersOf.size === 0) return [p.dim('  no session waits for another')];
  let roots = [...waitersOf.keys()].filter((pid) => !blocked.has(pid)).sort((a, b) => a - b);
  if (roots.length === 0) roots = [Math.min(...waitersOf.keys())];
  const lines: string[] = [];
  const shown = new Set<number>();
  const describe = (pid: number): string => {
    const session = sessions.get(pid);
    if (!session) return `${p.bold(String(pid))} ${p.dim('(no locks in this database)')}`;
    const app = session.application ? ` ${p.cyan(session.application)}` : '';
    const xactMs = session.transactionStart ? inspection.at.getTime() - session.transactionStart.getTime() : null;
    const what = session.wait
      ? p.yellow(`waits ${duration(session.wait.waitingMs)} for ${session.wait.mode} on ${targetOf(session.wait)}`)
      : `${session.state ?? '?'}${xactMs !== null ? `, transaction ${duration(xactMs)}` : ''}`;
    const pidText = blocked.has(pid) ? p.bold(String(pid)) : p.red(p.bold(String(pid)));
    return `${pidText}${app}  ${what}  ${p.dim(oneLine(session.query, 60))}`;
  };
  const walk = (pid: number, prefix: string, last: boolean, depth: number): void => {
    const branch = depth === 0 ? '' : last ? '└─ ' : '├─ ';
    if (shown.has(pid)) {
      lines.push(`  ${prefix}${branch}${p.bold(String(pid))} ${p.dim('(shown above)')}`);
      return;
    }
    shown.add(pid);
    lines.push(`  ${prefix}${branch}${describe(pid)}`);
    const children = [...new Set(waitersOf.get(pid) ?? [])].sort((a, b) => a - b);
    const childPrefix = depth === 0 ? '' : prefix + (last ? '   ' : '│  ');
    children.forEach((child, index) => walk(child, childPrefix, index === children.length - 1, depth + 1));
  };
  for (const root of roots) walk(root, '', true, 0);
  return lines;
}

/** Rows of cells as aligned columns; the header dimmed. Widths ignore ANSI codes. */
export function renderTable(header: string[], rows: string[][], p: Palette, colorize?: (row: number, column: number, cell: string) => string): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const pad = (cell: string, column: number): string => cell.padEnd(widths[column] ?? 0);
  const lines = [p.dim(header.map(pad).join('  ').trimEnd())];
  rows.forEach((row, index) => {
    lines.push(
      row
        .map((cell, column) => {
          const padded = pad(cell, column);
          return colorize ? colorize(index, column, padded) : padded;
        })
        .join('  ')
        .trimEnd(),
    );
  });
  return lines;
}

/** The whole human-readable status: header, blocking tree, locks, leases. */
export function renderStatus(inspection: Inspection, database: string, p: Palette): string {
  const out: string[] = [];
  out.push(`${p.bold('ormlock status')}  database ${p.cyan(database)}  at ${inspection.at.toISOString()}`);
  out.push('');
  out.push(p.bold('Blocking tree'));
  out.push(...renderTree(inspection, p));
  out.push('');
  out.push(p.bold(`Locks (${inspection.locks.length})`));
  if (inspection.locks.length === 0) {
    out.push(p.dim('  none'));
  } else {
    const header = ['PID', 'APPLICATION', 'USER', 'TYPE', 'TARGET', 'MODE', 'STATUS', 'WAIT', 'BLOCKED BY', 'QUERY'];
    const rows = inspection.locks.map((lock) => [
      String(lock.pid),
      oneLine(lock.application, 24),
      lock.user ?? '',
      lock.lockType,
      oneLine(targetOf(lock), 48),
      lock.mode,
      lock.granted ? (lock.blocking.length > 0 ? 'blocking' : 'held') : 'waiting',
      duration(lock.waitingMs),
      lock.blockedBy.join(','),
      oneLine(lock.query, 50),
    ]);
    const statusColumn = 6;
    out.push(
      ...renderTable(header, rows, p, (row, column, cell) => {
        if (column !== statusColumn) return cell;
        const lock = inspection.locks[row];
        if (!lock?.granted) return p.yellow(cell);
        return lock.blocking.length > 0 ? p.red(cell) : p.green(cell);
      }).map((line) => `  ${line}`),
    );
  }
  out.push('');
  out.push(p.bold(`Leases (${inspection.leases.length})`));
  if (inspection.leases.length === 0) {
    out.push(p.dim('  none (or no lease table)'));
  } else {
    const rows = inspection.leases.map((lease) => [
      lease.name,
      lease.owner,
      lease.token.toString(),
      lease.expiresAt.toISOString(),
      lease.expired ? 'expired' : 'held',
    ]);
    out.push(...renderTable(['NAME', 'OWNER', 'TOKEN', 'EXPIRES', 'STATUS'], rows, p).map((line) => `  ${line}`));
  }
  return `${out.join('\n')}\n`;
}
