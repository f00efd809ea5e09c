// Where the project's own built programs live (see the Makefile).
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN_DIR = `${REPO_ROOT}build/bin`;
export const NODE_BIN = process.execPath;

export const programs = {
  cni: `${BIN_DIR}/palisade-cni`,
  podserver: `${BIN_DIR}/palisade-podserver`,
  prober: `${BIN_DIR}/palisade-prober`,
  agent: `${REPO_ROOT}agent/main.ts`,
  operator: `${REPO_ROOT}operator/main.ts`,
} as const;
