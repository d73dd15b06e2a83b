package store

// RotateStatement lets the plan test explain the exact rotation statement.
const RotateStatement = rotatePostgres
