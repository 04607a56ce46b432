/** The registry suites (uploads, pulls, manifests, faults) once more, on the s3 driver. */
import { registrySuiteOn } from '../helpers/storage-matrix.js';

await registrySuiteOn('s3');
