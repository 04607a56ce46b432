/** A running server component, as returned by `runTokenServer` and `runRegistry`. */
export interface Running {
  name: string;
  close(): Promise<void>;
}
