// k6 load test of the [[ entities ]] API: `k6 run tests/performance/load-test.js`
// (BASE_URL defaults to a backend on this machine). Each virtual user signs up once, then
// creates and lists [[ entities ]]. Bounded: at most 20 users for 2 minutes.
import http from "k6/http";
import { check, sleep } from "k6";

export const options = {
  stages: [
    { duration: "30s", target: 10 },
    { duration: "1m", target: 20 },
    { duration: "30s", target: 0 },
  ],
  thresholds: {
    http_req_duration: ["p(95)<300"],
    http_req_failed: ["rate<0.01"],
  },
};

const baseUrl = __ENV.BASE_URL || "http://localhost:[[ backend_port ]]";
const json = { headers: { "Content-Type": "application/json" } };

let token = null;

function signUp() {
  const email = `load-${__VU}-${Date.now()}@example.com`;
  const response = http.post(`${baseUrl}/api/auth/register`, JSON.stringify({ email, password: "load-test-password" }), json);
  check(response, { "registered (201)": (r) => r.status === 201 });
  return response.status === 201 ? response.json("token") : null;
}

export default function () {
  if (token === null) {
    token = signUp();
    if (token === null) {
      sleep(1);
      return;
    }
  }
  const auth = { headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` } };

  const created = http.post(`${baseUrl}/api/[[ entities ]]`, JSON.stringify({ title: `Load test ${__ITER}` }), auth);
  check(created, { "created (201)": (r) => r.status === 201 });

  const listed = http.get(`${baseUrl}/api/[[ entities ]]`, auth);
  check(listed, { "listed (200)": (r) => r.status === 200 });

  sleep(1);
}
