/** An OCI content descriptor, as manifests, indexes and the referrers API carry it. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { architecture?: string; os?: string; variant?: string };
  urls?: string[];
}
