// The coded error of the proxy agent (certificate fetch and rotation, SDS).
import { TrellisError } from '../common/errors.js';

export class AgentError extends TrellisError {}
