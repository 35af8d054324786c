// The CA's coded error: what went wrong (TRELLIS_CA_*) and the reason a caller or operator reads.
import { TrellisError } from '../common/errors.js';

export class CaError extends TrellisError {}
