import { gcSuite } from './gc-suite.js';

gcSuite('online GC on the filesystem driver', async () => ({}));
