/** Raised for any configuration problem; the message names the offending key or file. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
