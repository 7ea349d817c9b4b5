export interface User {
  id: number;
  email: string;
  createdAt: string;
}

export interface __Entity__ {
  id: number;
  ownerId: number;
  title: string;
  details: string;
  done: boolean;
  createdAt: string;
}

export type New__Entity__ = Pick<__Entity__, "title" | "details">;

export type __Entity__Update = Partial<Pick<__Entity__, "title" | "details" | "done">>;
