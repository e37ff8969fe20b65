/** The load scenarios in the order a run executes them (research/reliability.md §4.2). */
import type { Ctx, Result } from '#load/harness';
import { g1, g1TwoProcesses } from './g1-duplicate-storm';
import { g2 } from './g2-hot-user';
import { g3 } from './g3-spread';
import { g4 } from './g4-sign-in-race';
import { g5 } from './g5-cross-channel';
import { g6 } from './g6-forged-flood';
import { g7 } from './g7-parser-bombs';
import { g9 } from './g9-lost-notifies';

export const SCENARIOS: { id: string; run: (ctx: Ctx) => Promise<Result> }[] = [
  { id: 'G1', run: g1 },
  { id: 'G1', run: g1TwoProcesses },
  { id: 'G2', run: g2 },
  { id: 'G3', run: g3 },
  { id: 'G4', run: g4 },
  { id: 'G5', run: g5 },
  { id: 'G6', run: g6 },
  { id: 'G7', run: g7 },
  { id: 'G9', run: g9 },
];
