// The control plane's default listen addresses, on Istio's ports (15010 plaintext xDS, 15012 xDS and CA over TLS, 15014 monitoring).
export const DEFAULT_XDS_ADDRESS = '127.0.0.1:15010';
export const DEFAULT_SECURE_XDS_ADDRESS = '127.0.0.1:15012';
export const DEFAULT_MONITORING_ADDRESS = '127.0.0.1:15014';
