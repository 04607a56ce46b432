import type { Config } from '../config/load.js';
import type { Logger } from '../log/logger.js';
import type { Running } from '../cli.js';

export async function runTokenServer(_config: Config, _log: Logger): Promise<Running> {
  throw new Error('token server not implemented yet');
}
