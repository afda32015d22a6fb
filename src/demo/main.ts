/**
 * `npm start` until the daemon lands: the kernel demonstration.
 * @module
 */
import { kernelDemo } from './kernel-demo.ts';

await kernelDemo();
