import { HomePage } from "./pages/HomePage";
import { SignInPage } from "./pages/SignInPage";
import { useSession } from "./state/session";

export function App() {
  const { session, signIn, signOut } = useSession();

  return (
    <main className="app">
      <h1>[[ Entities ]]</h1>
      <p className="description">{[[ description | tojson ]]}</p>
      {session ? <HomePage session={session} onSignOut={signOut} /> : <SignInPage onSignedIn={signIn} />}
    </main>
  );
}
