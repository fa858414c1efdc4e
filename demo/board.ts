/**
 * What the demo shows while it runs. On a terminal: a board redrawn in place (who holds what,
 * progress, the latest events). Elsewhere (CI logs, pipes): one plain line per notable event and a
 * progress line every two seconds.
 */
import { SCENE } from './scene.js';

/** A row of the board: one child process. */
export interface WorkerView {
  readonly name: string;
  status: string;
  count: number;
}

/** Everything the board shows; the main process updates it from the children's events. */
export interface SceneState {
  header: string;
  jobsDone: number;
  transfersDone: number;
  transfersRefused: number;
  longestRowWaitMs: number;
  counterValue: number;
  counterRetries: number;
  leader: string | undefined;
  migration: string;
  readonly queue: WorkerView[];
  readonly transfers: WorkerView[];
  readonly cron: WorkerView[];
  readonly counters: WorkerView[];
  readonly report: WorkerView;
  readonly events: string[];
}

/** A fresh state with the given child names. */
export function newSceneState(names: { queue: string[]; transfers: string[]; cron: string[]; counters: string[] }): SceneState {
  const views = (list: string[], status: string): WorkerView[] => list.map((name) => ({ name, status, count: 0 }));
  return {
    header: '',
    jobsDone: 0,
    transfersDone: 0,
    transfersRefused: 0,
    longestRowWaitMs: 0,
    counterValue: 0,
    counterRetries: 0,
    leader: undefined,
    migration: 'starts once the reporting session holds its lock',
    queue: views(names.queue, 'starting'),
    transfers: views(names.transfers, 'starting'),
    cron: views(names.cron, 'starting'),
    counters: views(names.counters, 'starting'),
    report: { name: SCENE.reportApplicationName, status: 'starting', count: 0 },
    events: [],
  };
}

const useColor = (): boolean => process.stdout.isTTY === true && !process.env['NO_COLOR'];
const paint = (code: string) => (text: string) => (useColor() ? `\x1b[${code}m${text}\x1b[0m` : text);
/** Text styles, plain when not on a terminal or with `NO_COLOR`. */
export const style = { bold: paint('1'), dim: paint('2'), red: paint('31'), green: paint('32'), yellow: paint('33'), cyan: paint('36') };

function bar(done: number, total: number, width = 20): string {
  const filled = Math.round((Math.min(done, total) / total) * width);
  return `${style.green('█'.repeat(filled))}${style.dim('░'.repeat(width - filled))} ${String(done).padStart(3)}/${total}`;
}

function rows(views: readonly WorkerView[]): string[] {
  return views.map((view) => `    ${view.name.padEnd(12)} ${view.status}`);
}

/** The board as lines, for a terminal. */
export function renderBoard(state: SceneState, elapsedMs: number): string[] {
  const totalTransfers = SCENE.transferHandlers * SCENE.transfersPerHandler;
  const totalIncrements = SCENE.counterWriters * SCENE.incrementsPerWriter;
  return [
    `${style.bold('ormlock demo')}  ${style.dim(state.header)}  ${(elapsedMs / 1000).toFixed(1)}s`,
    '',
    `${style.cyan('queue')}      claim … FOR UPDATE SKIP LOCKED, locked until commit · ${SCENE.queueWorkers} Drizzle workers   ${bar(state.jobsDone, SCENE.jobs)} jobs`,
    ...rows(state.queue),
    `${style.cyan('transfers')}  both accounts FOR UPDATE, in id order · ${SCENE.transferHandlers} Prisma handlers   ${bar(state.transfersDone, totalTransfers)} ` +
      `(${state.transfersRefused} refused: would overdraw, or rows busy; longest row-lock wait ${state.longestRowWaitMs} ms)`,
    ...rows(state.transfers),
    `${style.cyan('cron')}       lease ${JSON.stringify(SCENE.leaseName)} (ttl 1s), leader election, fenced writes · ${state.cron.length} pg instances   ` +
      `leader: ${state.leader ? style.bold(state.leader) : style.dim('none')}`,
    ...rows(state.cron),
    `${style.cyan('counters')}   updateVersioned + withRetry, no lock held · ${SCENE.counterWriters} Drizzle writers   ${bar(state.counterValue, totalIncrements)} ` +
      `(${state.counterRetries} retries after a stale version)`,
    ...rows(state.counters),
    `${style.cyan('migration')}  ALTER TABLE memberships with prioritize · Prisma`,
    ...rows([state.report]),
    `    ${'migration'.padEnd(12)} ${state.migration}`,
    '',
    style.dim('latest events'),
    ...state.events.slice(-6).map((line) => `  ${line}`),
  ];
}

/** The one-line progress summary of plain output. */
export function progressLine(state: SceneState): string {
  return (
    `progress: jobs ${state.jobsDone}/${SCENE.jobs} · transfers ${state.transfersDone}/${SCENE.transferHandlers * SCENE.transfersPerHandler} · ` +
    `counter ${state.counterValue}/${SCENE.counterWriters * SCENE.incrementsPerWriter} (${state.counterRetries} retries) · cron leader ${state.leader ?? 'none'}`
  );
}

/** Draws the board in place on a terminal, or prints plain lines elsewhere. */
export class Display {
  readonly #tty = process.stdout.isTTY === true;
  readonly #started = performance.now();
  #height = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #lastProgress = 0;

  constructor(readonly state: SceneState) {}

  /** Milliseconds since the demo started. */
  elapsed(): number {
    return performance.now() - this.#started;
  }

  /** Starts redrawing (terminal) or progress lines (plain). */
  start(): void {
    this.#timer = setInterval(() => this.#tick(), this.#tty ? 100 : 250);
  }

  /** Records a notable event: shown on the board, or printed at once in plain mode. */
  event(who: string, text: string): void {
    const line = `${(this.elapsed() / 1000).toFixed(1).padStart(5)}s  ${who.padEnd(12)} ${text}`;
    this.state.events.push(line);
    if (!this.#tty) process.stdout.write(`${line}\n`);
  }

  /** A line outside the board (setup, summary). */
  say(text: string): void {
    this.#clear();
    process.stdout.write(`${text}\n`);
  }

  /** Draws the last frame and stops. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#tty) this.#draw();
    else process.stdout.write(`${progressLine(this.state)}\n`);
    this.#height = 0;
  }

  #tick(): void {
    if (this.#tty) {
      this.#draw();
      return;
    }
    if (this.elapsed() - this.#lastProgress >= 2000) {
      this.#lastProgress = this.elapsed();
      process.stdout.write(`${(this.elapsed() / 1000).toFixed(1).padStart(5)}s  ${progressLine(this.state)}\n`);
    }
  }

  #clear(): void {
    if (!this.#tty || this.#height === 0) return;
    process.stdout.write(`\x1b[${this.#height}A\x1b[0J`);
    this.#height = 0;
  }

  #draw(): void {
    const columns = process.stdout.columns ?? 120;
    // Cut to the terminal's width: a wrapped line would break the cursor arithmetic of the redraw.
    const lines = renderBoard(this.state, this.elapsed()).map((line) => truncate(line, columns - 1));
    this.#clear();
    process.stdout.write(`${lines.join('\n')}\n`);
    this.#height = lines.length;
  }
}

/** `line` cut to `width` visible characters, keeping its colour codes balanced. */
function truncate(line: string, width: number): string {
  let visible = 0;
  let out = '';
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\x1b') {
      const end = line.indexOf('m', i);
      out += line.slice(i, end + 1);
      i = end;
      continue;
    }
    if (visible >= width) continue;
    out += line[i];
    visible++;
  }
  return useColor() ? `${out}\x1b[0m` : out;
}
