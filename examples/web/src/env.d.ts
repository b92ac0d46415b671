interface ImportMetaEnv {
  /** Latch's HTTP port as the browser reaches it, e.g. http://localhost:8080. */
  readonly VITE_LATCH_URL?: string;
}
