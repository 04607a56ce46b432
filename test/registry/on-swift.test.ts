/** The registry suites (uploads, pulls, manifests, faults) once more, on the swift driver. */
import { registrySuiteOn } from '../helpers/storage-matrix.js';

await registrySuiteOn('swift');
