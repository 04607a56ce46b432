/**
 * The shape of a convict schema, and the type of the values it validates to, so a
 * component can declare its settings once (doc, format, default, env) and get their
 * type from that declaration instead of writing it a second time by hand.
 */

/** One setting as convict declares it. */
export interface SettingSpec {
  readonly doc: string;
  readonly format: unknown;
  readonly default: unknown;
  readonly env: string;
  readonly sensitive?: boolean;
}

/** A group of settings, nested as the configuration file nests them. */
export interface SchemaFragment {
  readonly [key: string]: SettingSpec | SchemaFragment;
}

/** The value type of a default written `as const`: literals widen to their primitive. */
type Widen<T> = T extends string
  ? string
  : T extends number
    ? number
    : T extends boolean
      ? boolean
      : T extends readonly (infer E)[]
        ? Widen<E>[]
        : T;

/**
 * The validated values of a fragment. A setting whose format is a list of allowed values
 * has their union as its type; any other takes the (widened) type of its default.
 */
export type SettingsOf<S> = {
  -readonly [K in keyof S]: S[K] extends { readonly doc: string; readonly default: infer D; readonly format: infer F }
    ? F extends readonly (infer E)[]
      ? E
      : Widen<D>
    : SettingsOf<S[K]>;
};
