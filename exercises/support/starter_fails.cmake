# ctest exercise.NN.K.starter_fails: the student's file as shipped must build
# and its checker must fail cleanly (exit 1, "not yet"). A checker that passes
# an unsolved starter is a no-op; one that crashes on it hides its message.
# Usage: cmake -DBUILD_DIR=... -DTARGET=ex_03_1_starter -DEXE=.../ex_03_1_starter -P starter_fails.cmake
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET} RESULT_VARIABLE rc
                OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${TARGET} does not build; a starter must compile and fail its check:\n${out}")
endif()
execute_process(COMMAND ${EXE} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
if(rc EQUAL 0)
  message(FATAL_ERROR "the checker passed the unsolved starter: it checks nothing\n${out}")
endif()
if(NOT rc EQUAL 1)
  message(FATAL_ERROR "the checker should fail the starter with exit 1, not '${rc}':\n${out}\n${err}")
endif()
string(REGEX REPLACE "\n.*" "" verdict "${out}")
message(STATUS "the starter fails as it should: ${verdict}")
