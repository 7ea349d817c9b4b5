import type { ButtonHTMLAttributes } from "react";

export interface ButtonProps extends ButtonHTMLAttributes<HTMLButtonElement> {
  variant?: "primary" | "secondary" | "danger";
}

/** A button that is not a submit button unless asked (type="submit"). */
export function Button({ variant = "primary", type = "button", className, ...props }: ButtonProps) {
  const classes = ["button", `button-${variant}`, className].filter(Boolean).join(" ");
  return <button type={type} className={classes} {...props} />;
}
