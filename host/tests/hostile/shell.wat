;; A `policy` world component around a hand-written core module. The tests
;; (../hostile.rs, ../policy_swap.rs) put a body into `check` ({{CHECK}}) or
;; edit the interface to make hostile or wrong candidates. Layout of the canonical ABI:
;;   check-report: valid u8 @0, code option<string> @4, detail @16,
;;                 sanitized (ptr,len) @28, estimated-tokens u64 @40
;;   result<string, failure>: tag u8 @0, payload @4
;;   string results: (ptr,len) pair
;;   result<list<violation>, failure>: tag u8 @0, list (ptr,len) @4
(component
  (core module $m
    (memory (export "memory") 1)
    ;; "hostile-0.0.1" as a (ptr,len) string result at 1024.
    (data (i32.const 1024) "\10\04\00\00\0d\00\00\00")
    (data (i32.const 1040) "hostile-0.0.1")
    ;; Arguments land at 8192; memory grows to fit them.
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
      (local $need i32)
      (local.set $need (i32.add (i32.const 8192) (local.get 3)))
      (block $done
        (loop $grow
          (br_if $done (i32.le_u (local.get $need) (i32.mul (memory.size) (i32.const 65536))))
          (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
          (br $grow)))
      (i32.const 8192))
    ;; Runs the test's body, then answers an all-zero report (invalid, no
    ;; code, empty text). Param 1 is the message length: "warm-up" is 7.
    (func (export "check") (param i32 i32) (result i32)
      {{CHECK}}
      (i32.const 4096))
    ;; ok("") for every body.
    (func (export "cache-key") (param i32 i32) (result i32)
      (i32.const 2048))
    ;; ok([]) (no violation) for every request.
    (func (export "validate-request") (param i32 i32) (result i32)
      (i32.const 2048))
    (func (export "version") (result i32)
      (i32.const 1024))
  )
  (core instance $i (instantiate $m))
  (alias core export $i "memory" (core memory $memory))
  (alias core export $i "cabi_realloc" (core func $realloc))
  (type $opt (option string))
  (type $report (record (field "valid" bool) (field "code" $opt) (field "detail" $opt)
                        (field "sanitized" string) (field "estimated-tokens" u64)))
  (type $failure (record (field "code" string) (field "message" string)))
  (type $check-ty (func (param "message" string) (result $report)))
  (type $key-res (result string (error $failure)))
  (type $key-ty (func (param "body-json" string) (result $key-res)))
  (type $version-ty (func (result string)))
  (type $violation (record (field "path" string) (field "code" string) (field "message" string)))
  (type $val-res (result (list $violation) (error $failure)))
  (type $val-ty (func (param "request-json" string) (result $val-res)))
  (func $validate (type $val-ty)
    (canon lift (core func $i "validate-request") (memory $memory) (realloc $realloc) string-encoding=utf8))
  (func $check (type $check-ty)
    (canon lift (core func $i "check") (memory $memory) (realloc $realloc) string-encoding=utf8))
  (func $cache-key (type $key-ty)
    (canon lift (core func $i "cache-key") (memory $memory) (realloc $realloc) string-encoding=utf8))
  (func $version (type $version-ty)
    (canon lift (core func $i "version") (memory $memory) string-encoding=utf8))
  (component $shim
    (type $opt (option string))
    (type $report (record (field "valid" bool) (field "code" $opt) (field "detail" $opt)
                          (field "sanitized" string) (field "estimated-tokens" u64)))
    (import "import-type-check-report" (type $report-in (eq $report)))
    (type $failure (record (field "code" string) (field "message" string)))
    (import "import-type-failure" (type $failure-in (eq $failure)))
    (import "import-func-check" (func $check (param "message" string) (result $report-in)))
    (type $key-res (result string (error $failure-in)))
    (import "import-func-cache-key" (func $cache-key (param "body-json" string) (result $key-res)))
    (import "import-func-version" (func $version (result string)))
    (type $violation (record (field "path" string) (field "code" string) (field "message" string)))
    (import "import-type-violation" (type $violation-in (eq $violation)))
    (type $val-res (result (list $violation-in) (error $failure-in)))
    (import "import-func-validate-request" (func $validate (param "request-json" string) (result $val-res)))
    (export $report-out "check-report" (type $report-in))
    (export $failure-out "failure" (type $failure-in))
    (export "check" (func $check) (func (param "message" string) (result $report-out)))
    (type $key-res-out (result string (error $failure-out)))
    (export "cache-key" (func $cache-key) (func (param "body-json" string) (result $key-res-out)))
    (export $violation-out "violation" (type $violation-in))
    (type $val-res-out (result (list $violation-out) (error $failure-out)))
    (export "validate-request" (func $validate) (func (param "request-json" string) (result $val-res-out)))
    (export "version" (func $version))
  )
  (instance $checks (instantiate $shim
    (with "import-func-check" (func $check))
    (with "import-func-cache-key" (func $cache-key))
    (with "import-func-version" (func $version))
    (with "import-func-validate-request" (func $validate))
    (with "import-type-violation" (type $violation))
    (with "import-type-check-report" (type $report))
    (with "import-type-failure" (type $failure))))
  (export "mangaassist:policy/checks@0.2.0" (instance $checks))
)
