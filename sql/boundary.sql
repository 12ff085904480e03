-- The C++/PostgreSQL error boundary, proven in both directions.
-- The test functions live in the library but no CREATE EXTENSION script
-- declares them: only this suite does.
CREATE SCHEMA foreman_test;
CREATE FUNCTION foreman_test.throw_core_error(sqlstate text, message text) RETURNS void
    LANGUAGE C STRICT AS 'pg_foreman', 'foreman_test_throw_core_error';
CREATE FUNCTION foreman_test.throw_std_exception(message text) RETURNS void
    LANGUAGE C STRICT AS 'pg_foreman', 'foreman_test_throw_std_exception';
CREATE FUNCTION foreman_test.pg_error_unwinds(sql text) RETURNS int
    LANGUAGE C STRICT AS 'pg_foreman', 'foreman_test_pg_error_unwinds';
CREATE FUNCTION foreman_test.destructor_count() RETURNS int
    LANGUAGE C STRICT AS 'pg_foreman', 'foreman_test_destructor_count';

-- C++ to PostgreSQL: an exception carrying a SQLSTATE becomes an ordinary
-- ERROR with that SQLSTATE, message, detail and hint ...
SELECT foreman_test.throw_core_error('22023', 'invalid widget');
\echo :LAST_ERROR_SQLSTATE
-- ... and the session goes on.
SELECT 'still here' AS session;
SELECT foreman_test.throw_core_error('P0001', 'raised from C++');
\echo :LAST_ERROR_SQLSTATE

-- Any other C++ exception is an internal error (XX000) naming the function.
SELECT foreman_test.throw_std_exception('something broke');
\echo :LAST_ERROR_SQLSTATE

-- PostgreSQL to C++: an ERROR raised under guarded C++ code runs the C++
-- destructors on the way out and reaches the client with its own SQLSTATE.
SELECT foreman_test.destructor_count() AS before \gset
SELECT foreman_test.pg_error_unwinds('SELECT 1/0');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman_test.destructor_count() - :before AS destructors_run;

SELECT foreman_test.pg_error_unwinds('SELECT * FROM no_such_table');
\echo :LAST_ERROR_SQLSTATE
SELECT foreman_test.destructor_count() - :before AS destructors_run;

-- Inside a transaction: the error aborts only to the savepoint.
BEGIN;
SAVEPOINT before_error;
SELECT foreman_test.pg_error_unwinds('SELECT 1/0');
ROLLBACK TO SAVEPOINT before_error;
SELECT 'transaction goes on' AS transaction;
COMMIT;

-- Without an error the destructor runs exactly once too.
SELECT foreman_test.pg_error_unwinds('SELECT 1') AS result;
SELECT foreman_test.destructor_count() - :before AS destructors_run;
