import http from "k6/http";
import { check, sleep } from "k6";

export const options = {
  stages: [
    { duration: "30s", target: 20 },
    { duration: "1m", target: 50 },
    { duration: "30s", target: 0 },
  ],
  thresholds: {
    http_req_duration: ["p(95)<300"],
    http_req_failed: ["rate<0.01"],
  },
};

const baseUrl = __ENV.BASE_URL || "http://localhost:3000";
const token = __ENV.TOKEN || "";

export default function () {
  const response = http.get(`${baseUrl}/api/__entities__`, {
    headers: { authorization: `Bearer ${token}` },
  });
  check(response, { "status is 200": (r) => r.status === 200 });
  sleep(1);
}
