import { defineConfig } from "vitest/config";

export default defineConfig({
  server: {
    port: 5173,
[% if backend %]
    // API calls go to the backend, so the app and the API share one origin (as behind nginx).
    proxy: {
      "/api": "http://localhost:[[ backend_port ]]",
    },
[% endif %]
  },
  test: {
    environment: "jsdom",
    setupFiles: ["./src/test/setup.ts"],
  },
});
