// Pool-thread entry when hugevisor runs from its TypeScript sources (a checkout under tsx):
// Node 20 workers do not inherit the tsx loader from the parent's --import, so register it
// here, then re-export the TypeScript worker body. From dist/ the pool loads worker.js
// directly and this file is not used (src/experiments/pool.ts chooses).
import { register } from 'tsx/esm/api';

register();
const mod = await import('./worker.ts');
export default mod.default;
