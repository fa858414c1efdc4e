/** The size of the demo's scene, shared by the main process, its children and its checks. */
export const SCENE = {
  jobs: 40,
  accounts: 4,
  openingBalance: 100,
  transferHandlers: 2,
  transfersPerHandler: 30,
  queueWorkers: 3,
  counterWriters: 3,
  incrementsPerWriter: 30,
  leaseName: 'demo:cron',
  reportApplicationName: 'demo-report',
} as const;
