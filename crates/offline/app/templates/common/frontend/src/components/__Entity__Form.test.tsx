import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { [[ Entity ]]Form } from "./[[ Entity ]]Form";

describe("[[ Entity ]]Form", () => {
  it("asks for a title instead of submitting a blank one", () => {
    const onSubmit = vi.fn(async () => true);
    render(<[[ Entity ]]Form onSubmit={onSubmit} />);
    fireEvent.change(screen.getByLabelText("Title"), { target: { value: "   " } });
    fireEvent.submit(screen.getByRole("form"));
    expect(screen.getByRole("alert").textContent).toMatch(/title/i);
    expect(onSubmit).not.toHaveBeenCalled();
  });

  it("submits the trimmed title[% if fields %] and the extra fields[% endif %], then clears", async () => {
    const onSubmit = vi.fn(async () => true);
    render(<[[ Entity ]]Form onSubmit={onSubmit} />);
    fireEvent.change(screen.getByLabelText("Title"), { target: { value: "  Write tests  " } });
[% for field in fields %]
[% if field.kind == "boolean" %]
    fireEvent.click(screen.getByLabelText([[ field.label | tojson ]]));
[% else %]
    fireEvent.change(screen.getByLabelText([[ field.label | tojson ]]), { target: { value: "[% if field.kind == "integer" %]4[% elif field.kind == "date" %]2030-01-31[% else %]some text[% endif %]" } });
[% endif %]
[% endfor %]
    fireEvent.click(screen.getByRole("button", { name: "Add [[ entity ]]" }));

    await waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit).toHaveBeenCalledWith({
      title: "Write tests",
[% for field in fields %]
      [[ field.name ]]: [% if field.kind == "integer" %]4[% elif field.kind == "boolean" %]true[% elif field.kind == "date" %]"2030-01-31"[% else %]"some text"[% endif %],
[% endfor %]
    });
    await waitFor(() => expect((screen.getByLabelText("Title") as HTMLInputElement).value).toBe(""));
  });
[% for field in fields if field.kind == "integer" %]

  it("refuses a [[ field.name ]] that is not a whole number", () => {
    const onSubmit = vi.fn(async () => true);
    render(<[[ Entity ]]Form onSubmit={onSubmit} />);
    fireEvent.change(screen.getByLabelText("Title"), { target: { value: "Something" } });
    fireEvent.change(screen.getByLabelText([[ field.label | tojson ]]), { target: { value: "1.5" } });
    fireEvent.submit(screen.getByRole("form"));
    expect(screen.getByRole("alert").textContent).toContain([[ field.label | tojson ]]);
    expect(onSubmit).not.toHaveBeenCalled();
  });
[% endfor %]
});
